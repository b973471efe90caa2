// Package version says which botfleet build is running: the version stamped
// at build time, or the module version and VCS revision Go recorded.
package version

import (
	"runtime"
	"runtime/debug"
)

// Version is set at build time with
// -ldflags "-X github.com/botfleet/botfleet/internal/version.Version=v1.2.3".
var Version = ""

// String returns the version: the stamped one, else the module version,
// else the VCS revision (with "+dirty" for a modified tree), else "dev".
func String() string {
	if Version != "" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return "dev"
	}
	return "dev-" + rev + dirty
}

// GoVersion returns the Go release the binary was built with.
func GoVersion() string { return runtime.Version() }
