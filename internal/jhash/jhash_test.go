package jhash

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// Vectors from the self-test of Bob Jenkins' public-domain lookup3.c
// (hashlittle), which the kernel's jhash equals on little-endian hosts.
func TestLookup3Vectors(t *testing.T) {
	const four = "Four score and seven years ago"
	for _, tc := range []struct {
		in   string
		seed uint32
		want uint32
	}{
		{"", 0, 0xdeadbeef},
		{"", 0xdeadbeef, 0xbd5b7dde},
		{four, 0, 0x17770551},
		{four, 1, 0xcd628161},
	} {
		if got := Bytes([]byte(tc.in), tc.seed); got != tc.want {
			t.Errorf("jhash(%q, %#x) = %#x, want %#x", tc.in, tc.seed, got, tc.want)
		}
	}
}

// jhash2 over n words equals jhash over the same 4n bytes, and Word and Key
// agree with both: the kernel relies on this when it picks jhash2 for keys
// whose size is a multiple of four.
func TestWordsEqualsBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 64; n += 4 {
		for range 50 {
			k := make([]byte, n)
			for i := range k {
				k[i] = byte(r.Uint32())
			}
			seed := r.Uint32()
			want := Bytes(k, seed)
			if got := Words(k, seed); got != want {
				t.Fatalf("n=%d: Words %#x, Bytes %#x", n, got, want)
			}
			if got := Key(k, seed); got != want {
				t.Fatalf("n=%d: Key %#x, Bytes %#x", n, got, want)
			}
			if n == 4 {
				if got := Word(binary.LittleEndian.Uint32(k), seed); got != want {
					t.Fatalf("Word %#x, Bytes %#x", got, want)
				}
			}
		}
	}
}

// Every tail length of jhash is exercised and distinct inputs spread.
func TestTailLengthsDiffer(t *testing.T) {
	seen := map[uint32]int{}
	k := make([]byte, 40)
	for n := 0; n <= 40; n++ {
		seen[Bytes(k[:n], 0)] = n
	}
	if len(seen) != 41 {
		t.Fatalf("zero keys of lengths 0..40 collide: %d distinct hashes", len(seen))
	}
}

func BenchmarkWord(b *testing.B) {
	var s uint32
	for i := 0; i < b.N; i++ {
		s += Word(uint32(i), 0)
	}
	_ = s
}
