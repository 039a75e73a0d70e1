//go:build linux

package kbpf

import "testing"

func TestRingbufOutput(t *testing.T) {
	Need(t)
	for _, size := range []int{8, 128} {
		for _, p := range []int{1, 2, 4} {
			r, err := RingbufOutput(size, p, 1<<18, 1<<20)
			if err != nil {
				t.Fatalf("size %d producers %d: %v", size, p, err)
			}
			if r.Records < 1<<18 {
				t.Fatalf("size %d producers %d: %d records read, want at least %d", size, p, r.Records, 1<<18)
			}
			t.Logf("size %d producers %d: %d records, %d retries, %.1f ns/record", size, p, r.Records, r.Retries, float64(r.Elapsed.Nanoseconds())/float64(r.Records))
		}
	}
}
