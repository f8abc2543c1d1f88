//go:build ignore

// Fixture for viper-import: a domain package importing viper.

package registry

import v "github.com/spf13/viper" // want "viper-import"

func dsn() string { return v.GetString("registry.dsn") }
