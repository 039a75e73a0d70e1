//go:build !linux

package kbpf

import (
	"syscall"
	"time"
)

// RingbufRun is one run of RingbufOutput.
type RingbufRun struct {
	Records          uint64
	Retries          uint64
	Elapsed          time.Duration
	ProducersElapsed time.Duration
}

// RecordsPerSec is Records / Elapsed.
func (r RingbufRun) RecordsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

// RingbufOutput would measure the kernel's ring buffer; on this GOOS it
// returns ENOSYS.
func RingbufOutput(recordSize, producers int, records uint64, ringSize uint32) (RingbufRun, error) {
	return RingbufRun{}, syscall.ENOSYS
}
