//go:build !linux

package machine

// Memory is unknown here: 0, and the settings sized by it take their
// minimums.
func Memory() uint64 { return 0 }
