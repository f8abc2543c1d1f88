// Package build holds the version information of the binary. Release builds
// set Version, Commit and Date with -ldflags -X; `go install` builds fall
// back to the module's build info.
package build

import (
	"runtime/debug"
)

// Set by the linker: -X github.com/usmp/usmp-psk/internal/build.Version=…
var (
	Version = ""
	Commit  = ""
	Date    = ""
)

// Info is what `usmp-psk version` reports.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Date      string `json:"date,omitempty"`
	GoVersion string `json:"go"`
}

// Get returns the version information, from the linker flags when set and
// otherwise from debug.ReadBuildInfo.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, Date: Date}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		info.GoVersion = bi.GoVersion
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.time":
				if info.Date == "" {
					info.Date = s.Value
				}
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}
