//go:build unix && !linux

package redisproc

import "syscall"

// sysProcAttr puts redis-server in its own process group, so that a Ctrl-C
// on the terminal reaches the lab and not the servers directly.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
