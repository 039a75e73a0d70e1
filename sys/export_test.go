//go:build linux

package sys

// SetTestHook installs f as the fd resolution hook (see testHook) until the
// returned function is called. Not for concurrent tests that do not expect
// it.
func SetTestHook(f func(point string)) (restore func()) {
	testHook = f
	return func() { testHook = nil }
}
