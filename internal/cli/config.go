package cli

// Non-secret configuration: flag > USMP_PSK_* environment > config file >
// default (design §7, house style §14). The master secret never passes
// through here (R23): it is read once in factory.go, and viper's prefix
// USMP_PSK_ does not cover USMP_MASTER_SECRET.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config holds the typed settings commands read.
type Config struct {
	// File is the config file that was read, "" when none.
	File string
	// NVS entry names (config nvs.namespace, nvs.id_key, nvs.psk_key).
	NVSNamespace string
	NVSIDKey     string
	NVSPSKKey    string
	// Sources names where each flag set from outside the command line got
	// its value ("$USMP_PSK_FORCE", a config file's path). A flag that is
	// Changed but not in Sources was given on the command line.
	Sources map[string]string
}

// onCommandLine reports whether the flag name was given on cmd's command
// line, not filled in from the environment or a config file.
func onCommandLine(f *Factory, cmd *cobra.Command, name string) bool {
	_, fromSettings := f.Config.Sources[name]
	return cmd.Flags().Changed(name) && !fromSettings
}

func defaultConfig() *Config {
	return &Config{NVSNamespace: "usmp", NVSIDKey: "device_id", NVSPSKKey: "psk"}
}

// envPrefix is the prefix of configuration variables.
const envPrefix = "USMP_PSK"

// loadConfig reads the configuration for cmd and copies values into the
// flags the user did not set.
func loadConfig(f *Factory, cmd *cobra.Command, explicit string) error {
	v := viper.New()
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_", ".", "_"))
	v.AutomaticEnv()
	v.SetDefault("nvs.namespace", "usmp")
	v.SetDefault("nvs.id_key", "device_id")
	v.SetDefault("nvs.psk_key", "psk")

	path, err := configPath(f, explicit)
	if err != nil {
		return err
	}
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return &FlagError{Err: fmt.Errorf("config file %s does not exist", path)}
			}
			return &FlagError{Err: fmt.Errorf("config file %s: cannot be parsed as YAML", path)}
		}
	}
	var setErr error
	sources := map[string]string{}
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if setErr != nil || fl.Changed || fl.Name == "config" || fl.Name == "help" {
			return
		}
		if !v.IsSet(fl.Name) {
			return
		}
		if err := cmd.Flags().Set(fl.Name, v.GetString(fl.Name)); err != nil {
			setErr = &FlagError{Err: fmt.Errorf("invalid value for %s from the environment or %s (want %s)", fl.Name, orNone(path), fl.Value.Type())}
			return
		}
		sources[fl.Name] = "the environment or " + orNone(path)
	})
	if setErr != nil {
		return setErr
	}
	f.Config = &Config{
		File:         path,
		NVSNamespace: v.GetString("nvs.namespace"),
		NVSIDKey:     v.GetString("nvs.id_key"),
		NVSPSKKey:    v.GetString("nvs.psk_key"),
		Sources:      sources,
	}
	return nil
}

func orNone(path string) string {
	if path == "" {
		return "the config file"
	}
	return path
}

// configPath picks the config file: --config (or $USMP_PSK_CONFIG), else
// usmp-psk.yaml in the working directory, else
// $XDG_CONFIG_HOME/usmp-psk/config.yaml (~/.config when unset).
func configPath(f *Factory, explicit string) (string, error) {
	if explicit == "" {
		explicit = f.Getenv(envPrefix + "_CONFIG")
	}
	if explicit != "" {
		return explicit, nil
	}
	if _, err := os.Stat("usmp-psk.yaml"); err == nil {
		return "usmp-psk.yaml", nil
	}
	base := f.Getenv("XDG_CONFIG_HOME")
	if base == "" {
		if home := f.Getenv("HOME"); home != "" {
			base = filepath.Join(home, ".config")
		}
	}
	if base != "" {
		p := filepath.Join(base, "usmp-psk", "config.yaml")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", nil
}
