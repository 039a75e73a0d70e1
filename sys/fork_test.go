//go:build linux

package sys_test

import "fmt"

// child runs a child role of the re-executed test binary and returns its
// exit code.
func child(role string) int {
	fmt.Println("unknown child role", role)
	return 2
}
