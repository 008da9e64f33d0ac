package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is the release this binary was built from, set at link time:
// go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Version returns the engine's version: the link-time version, else the
// module version recorded in the build, else "dev".
func Version() string {
	if version != "dev" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return version
}

// runVersion prints the version and the Go toolchain that built the binary.
func (m *Main) runVersion() error {
	_, err := fmt.Fprintf(m.Stdout, "subs %s (%s %s/%s)\n", Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}
