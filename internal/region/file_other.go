//go:build !unix

package region

import "errors"

var errNoFiles = errors.New("region: file-backed maps need a unix system")

// MapFile is not available without unix mappings.
func MapFile(int, uint64) (*Region, error) { return nil, errNoFiles }

// MapRingFile is not available without unix mappings.
func MapRingFile(int, uint64, uint64) (*Region, error) { return nil, errNoFiles }

func freeShared(mem []byte) error { return discard(mem) }
