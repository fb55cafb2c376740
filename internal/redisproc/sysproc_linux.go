package redisproc

import "syscall"

// sysProcAttr puts redis-server in its own process group, so that a
// terminal's Ctrl-C reaches the lab, not Redis, and a group signal reaches
// only this server. Pdeathsig kills it if the process that started it dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
