package redisproc

import "syscall"

// sysProcAttr puts redis-server in its own process group, so that a Ctrl-C
// on the terminal reaches the lab (which then stops its servers) and not the
// servers directly, and asks the kernel to SIGKILL it if the process that
// started it dies without stopping it (a test binary killed by -timeout), so
// no server outlives its owner.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
