//go:build ignore

// Fixture: internal/cli/config.go is the one file that may import viper.

package cli

import "github.com/spf13/viper"

func newViper() *viper.Viper {
	v := viper.New()
	v.SetEnvPrefix("USMP_PSK")
	v.AutomaticEnv()
	return v
}
