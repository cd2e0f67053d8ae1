package app

import "runtime/debug"

// VersionInfo is the binary's version and commit: ver and rev as the linker
// set them (-X main.version=..., -X main.commit=...), else what the Go
// toolchain recorded (the module version, vcs.revision); rev "unknown" if
// neither says.
func VersionInfo(ver, rev string) (string, string) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if ver == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && rev == "" {
				rev = s.Value
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev
}
