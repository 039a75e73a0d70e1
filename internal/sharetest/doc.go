// Package sharetest tests maps shared by several processes: the test binary
// re-executes itself as writer, reader, producer and consumer children that
// open the same pinned maps of one pin namespace, and as writers that the
// parent kills with SIGKILL at random moments. The tests check what the
// kernel guarantees to processes sharing a map: no torn value is ever read,
// no key appears twice in an iteration, every acknowledged write is there at
// the end, a queue hands every element out exactly once, map lifetime
// follows pins and open handles across processes, and a process killed in
// the middle of an operation neither hangs the survivors nor corrupts the
// map (nor leaks its capacity).
//
// The package has no non-test code; run it with
//
//	go test -race -timeout 240s ./internal/sharetest/
package sharetest
