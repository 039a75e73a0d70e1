//go:build unix && !linux

package region

func adviseHugeOS([]byte) {}
