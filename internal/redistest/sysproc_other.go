//go:build !linux

package redistest

import "syscall"

// sysProcAttr is empty where the kernel cannot tie the child's life to ours.
func sysProcAttr() *syscall.SysProcAttr { return nil }
