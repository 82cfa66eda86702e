package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sessions are the admin's sign-ins, kept in Redis so that signing out ends a session for
// every copy of its cookie. A session is a random token; Redis holds only a hash of it
// (bound to a secret the caller gives, the admin token in practice), so that what Redis holds
// cannot be replayed as a cookie, and changing the secret ends every session at once.
type Sessions struct {
	rdb redis.UniversalClient
}

// NewSessions returns the session store on rdb.
func NewSessions(rdb redis.UniversalClient) *Sessions { return &Sessions{rdb: rdb} }

func keySession(secret, token string) string {
	h := sha256.Sum256([]byte("taskrace session\x00" + secret + "\x00" + token))
	return keyPrefix + "session:" + hex.EncodeToString(h[:])
}

// Create starts a session that lasts ttl and returns its token.
func (s *Sessions) Create(ctx context.Context, secret string, ttl time.Duration) (string, error) {
	b := make([]byte, 32)
	rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	if err := s.rdb.Set(ctx, keySession(secret, token), 1, ttl).Err(); err != nil {
		return "", Unavailable("cannot sign in now", err)
	}
	return token, nil
}

// Valid reports whether token is a live session. An unreachable Redis counts as no.
func (s *Sessions) Valid(ctx context.Context, secret, token string) bool {
	if len(token) != 43 { // 32 random bytes, base64url: anything else was never ours
		return false
	}
	n, err := s.rdb.Exists(ctx, keySession(secret, token)).Result()
	return err == nil && n == 1
}

// Revoke ends the session of token, for every copy of its cookie.
func (s *Sessions) Revoke(ctx context.Context, secret, token string) error {
	if token == "" {
		return nil
	}
	if err := s.rdb.Del(ctx, keySession(secret, token)).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return Unavailable("cannot sign out now", err)
	}
	return nil
}
