package namespace

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SlotName is the name of the reference link of a map-in-map's slot with
// key key: "k" and the key in hex, or for keys longer than 64 bytes "s"
// and the hex of their SHA-256.
func SlotName(key []byte) string {
	if len(key) <= 64 {
		return "k" + hex.EncodeToString(key)
	}
	return "s" + hex.EncodeToString(sha256Sum(key))
}

const tmpPrefix = ".t"

// IsTemp reports whether a name from RefNames is a temporary link.
func IsTemp(name string) bool { return strings.HasPrefix(name, tmpPrefix) }

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
