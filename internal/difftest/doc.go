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
//
// Environment: BPFMAP_DIFF_OPS (random operations of TestLockstep, default
// 875000), BPFMAP_DIFF_SEED (master seed), BPFMAP_DIFF_INSTANCE (rerun the
// one map instance a mismatch report names), BPFMAP_DIFF_STATS=1 (log the
// errno mix), BPFMAP_DIFF_IGNORE_EFAULT_OUTPUT=1 (only log differences in
// what a failing batch call left in user memory, to look for other bugs).
package difftest
