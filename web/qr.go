package web

import (
	"strconv"
	"strings"

	"rsc.io/qr"
)

// qrSVG renders a QR code of text as an SVG, drawn by the server so no outside service
// ever sees a run's URL. It returns "" if text does not fit in a QR code.
func qrSVG(text string) string {
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		return ""
	}
	const quiet = 4 // the quiet zone the standard asks for, in modules
	n := code.Size + 2*quiet
	var b strings.Builder
	b.WriteString(`<svg viewBox="0 0 `)
	b.WriteString(strconv.Itoa(n) + " " + strconv.Itoa(n))
	b.WriteString(`" class="h-full w-full" shape-rendering="crispEdges" role="img" aria-label="QR code of `)
	b.WriteString(strings.NewReplacer(`"`, "&quot;", "<", "&lt;", "&", "&amp;").Replace(text))
	b.WriteString(`" data-qr-svg><rect width="100%" height="100%" fill="#fff"/><path fill="#000" d="`)
	for y := 0; y < code.Size; y++ {
		for x := 0; x < code.Size; x++ {
			if code.Black(x, y) {
				b.WriteString("M" + strconv.Itoa(x+quiet) + " " + strconv.Itoa(y+quiet) + "h1v1h-1z")
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return b.String()
}
