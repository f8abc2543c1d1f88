//go:build ignore

// Fixture for viper-import: viper outside internal/cli/config.go.

package cli

import (
	"fmt"

	"github.com/spf13/viper" // want "viper-import"
)

func port() string {
	return fmt.Sprint(viper.Get("port"))
}
