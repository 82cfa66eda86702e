package app

import "net/netip"

// Addresses an outside target may not be reached at. The lists are IANA's IPv4 and IPv6
// Special-Purpose Address Registries (RFC 6890 and the RFCs they cite), every entry whose
// "Globally Reachable" column is not True, plus the blocks those registries leave to others:
// multicast (IANA's multicast registries), and for IPv6 everything outside 2000::/3, the only
// block the IPv6 Address Space registry allocates to global unicast (so fec0::/10, the
// deprecated site-local block, is refused with the rest of the reserved space).
//
// An IPv4-mapped IPv6 address is judged as the IPv4 address it is. Other prefixes that embed
// an IPv4 address (NAT64, 6to4, Teredo) are refused whole: what they reach is an IPv4 address
// that the IPv4 list would have to judge, through a translator.

// specialIPv4 is the IPv4 Special-Purpose Address Registry, less its globally reachable
// entries, plus multicast.
var specialIPv4 = prefixes(
	"0.0.0.0/8",          // "this network" (RFC 791)
	"10.0.0.0/8",         // private use (RFC 1918)
	"100.64.0.0/10",      // shared address space, carrier-grade NAT (RFC 6598)
	"127.0.0.0/8",        // loopback (RFC 1122)
	"169.254.0.0/16",     // link local (RFC 3927)
	"172.16.0.0/12",      // private use (RFC 1918)
	"192.0.0.0/24",       // IETF protocol assignments (RFC 6890); its globally reachable /32s are anycast services no task calls
	"192.0.2.0/24",       // documentation, TEST-NET-1 (RFC 5737)
	"192.88.99.0/24",     // deprecated 6to4 relay anycast (RFC 7526)
	"192.168.0.0/16",     // private use (RFC 1918)
	"198.18.0.0/15",      // benchmarking (RFC 2544)
	"198.51.100.0/24",    // documentation, TEST-NET-2 (RFC 5737)
	"203.0.113.0/24",     // documentation, TEST-NET-3 (RFC 5737)
	"224.0.0.0/4",        // multicast (RFC 5771)
	"240.0.0.0/4",        // reserved (RFC 1112)
	"255.255.255.255/32", // limited broadcast (RFC 919)
)

// specialIPv6 is the IPv6 Special-Purpose Address Registry, less its globally reachable
// entries, within 2000::/3 (all else is refused by globalUnicastIPv6).
var specialIPv6 = prefixes(
	// IETF protocol assignments (RFC 2928), refused whole: Teredo 2001::/32, benchmarking
	// 2001:2::/48, ORCHID and the anycast services within it are no delay targets.
	"2001::/23",
	"2001:db8::/32", // documentation (RFC 3849)
	"2002::/16",     // 6to4 (RFC 3056)
	"3fff::/20",     // documentation (RFC 9637)
	"5f00::/16",     // segment routing SIDs (RFC 9602)
)

// globalUnicastIPv6 is the IPv6 Address Space registry's global unicast block. Outside it:
// ::/128, ::1/128, ::ffff:0:0/96, 64:ff9b::/96 and 64:ff9b:1::/48, 100::/64, fc00::/7,
// fe80::/10, fec0::/10, ff00::/8 and the rest of the reserved space.
var globalUnicastIPv6 = netip.MustParsePrefix("2000::/3")

func prefixes(ps ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

// specialAddr reports whether ip is in a block that is not globally reachable, or that
// reaches an address only through another (IPv4 embedded in IPv6).
func specialAddr(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	ip = ip.Unmap() // ::ffff:0:0/96 is the IPv4 address it maps
	list := specialIPv4
	if ip.Is6() {
		if ip.Zone() != "" || !globalUnicastIPv6.Contains(ip) {
			return true
		}
		list = specialIPv6
	}
	for _, p := range list {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
