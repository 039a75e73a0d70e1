package sharetest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the child die when the test binary does (a watchdog
// panic, a test timeout): crash children loop until killed.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
