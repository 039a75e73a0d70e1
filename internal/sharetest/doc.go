// Package sharetest tests maps shared by several processes. The test binary
// re-executes itself (TestHelperProcess) as writer, reader, producer and
// consumer children that open the same pinned maps of one pin namespace, and
// as writers that the parent kills with SIGKILL at random moments.
//
// The tests check what processes sharing a kernel map can rely on: no torn
// value is ever read, no key appears twice in an iteration, every
// acknowledged write is there at the end, a queue, stack or ring buffer
// hands every element out exactly once, map lifetime follows pins and open
// handles across processes (including a holder that is killed), a write
// through one process's BPF_F_MMAPABLE memory is seen by another, and a
// freeze in one process makes updates in another fail. The crash tests
// check that a process killed in the middle of an operation neither hangs
// the survivors (a watchdog fails the test after 10 s without progress) nor
// corrupts the map: each killed child's operations are replayed from its
// log, and the map must hold, for every key, the last acknowledged value or
// the value of an operation in flight at a kill, with its capacity intact.
//
// The package has no non-test code; run it with
//
//	go test -race -timeout 240s ./internal/sharetest/
package sharetest
