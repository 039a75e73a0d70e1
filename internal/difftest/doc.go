// Package difftest holds bpfmap's differential tests: every test creates the
// same map in the running kernel (through internal/kbpf) and in bpfmap
// (through internal/command), applies the same commands to both and compares
// every errno and every output byte. The kernel is the authority; a mismatch
// is a bpfmap bug (or a change of the kernel) and is reported with the map
// attr, the operation, its arguments in hex, both results and the seed that
// reproduces it.
//
// The package has no non-test code besides this comment. Run it as root (or
// with CAP_BPF); without a usable bpf(2) every test skips, unless
// BPFMAP_REQUIRE_KERNEL=1 turns the skip into a failure.
//
//	go test ./internal/difftest/                      # all tests, default budget
//	BPFMAP_DIFF_OPS=1000000 go test -run TestLockstep ./internal/difftest/
//	BPFMAP_DIFF_SEED=123 go test -run TestLockstep ./internal/difftest/
//	go test -fuzz FuzzLockstep ./internal/difftest/
package difftest
