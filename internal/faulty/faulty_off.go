//go:build !faulty

package faulty

// On reports whether mutant name is switched on: never, in this build.
func On(name string) bool { return false }
