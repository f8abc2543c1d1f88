package cli

// Non-secret configuration: flag > USMP_PSK_* environment > config files >
// default (design §7, house style §14). The master secret never passes
// through here (R23): it is read once in factory.go, and the prefix
// USMP_PSK_ does not cover USMP_MASTER_SECRET.
//
// Trust model (docs/configuration.md, like git's safe.directory): the file
// usmp-psk.yaml in the working directory may come with a cloned repository
// or a shared directory, so it is not trusted with the settings of
// guardedSettings — those that weaken a safety rule or choose where a secret
// comes from or goes. They are taken only from a flag, the environment or a
// file the user chose ($XDG_CONFIG_HOME/usmp-psk/config.yaml, --config),
// and from anywhere but a flag they are announced on stderr with their
// source. The environment is read through Factory.Getenv, not viper's
// AutomaticEnv, so that each value's source is known and tests are sealed.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/usmp/usmp-psk/internal/provision"
	"github.com/usmp/usmp-psk/internal/psk"
)

// Config holds the typed settings commands read.
type Config struct {
	// NVS entry names (config nvs.namespace, nvs.id_key, nvs.psk_key).
	NVSNamespace string
	NVSIDKey     string
	NVSPSKKey    string
	// Sources names where each flag set from outside the command line got
	// its value ("$USMP_PSK_FORCE", a config file's path). A flag that is
	// Changed but not in Sources was given on the command line.
	Sources map[string]string
}

func defaultConfig() *Config {
	d := provision.DefaultLayout()
	return &Config{NVSNamespace: d.Namespace, NVSIDKey: d.IDKey, NVSPSKKey: d.PSKKey}
}

// onCommandLine reports whether the flag name was given on cmd's command
// line, not filled in from the environment or a config file.
func onCommandLine(f *Factory, cmd *cobra.Command, name string) bool {
	_, fromSettings := f.Config.Sources[name]
	return cmd.Flags().Changed(name) && !fromSettings
}

// settingBy names what set the flag name, for messages about its effect:
// "--force" when typed, "force from $USMP_PSK_FORCE" otherwise.
func settingBy(f *Factory, name string) string {
	if src, ok := f.Config.Sources[name]; ok {
		return name + " from " + src
	}
	return "--" + name
}

// envPrefix is the prefix of configuration variables.
const envPrefix = "USMP_PSK"

// workDirConfig is the config file looked for in the working directory.
const workDirConfig = "usmp-psk.yaml"

// nvsSettings are the config-only keys (no flag) and their defaults
// (design §6, written once in nvs.DefaultUSMPLayout).
func nvsSettings() map[string]string {
	d := provision.DefaultLayout()
	return map[string]string{"nvs.namespace": d.Namespace, "nvs.id_key": d.IDKey, "nvs.psk_key": d.PSKKey}
}

// guard says why a setting is guarded, and whether its value is shown when
// it is announced (a registry URL or an NVS value could hold a password).
type guard struct {
	why       string
	hideValue bool
	// urlOnly hides the value only when it is a URL or a connection
	// string (a registry path is no secret; a postgres:// URL may name a
	// user and a host).
	urlOnly bool
}

// hides reports whether val, the value of a setting so guarded, is left
// out of its announcement and of every later message.
func (g guard) hides(val string) bool {
	if g.urlOnly {
		return g.hideValue && (strings.Contains(val, "://") || strings.Contains(val, "="))
	}
	return g.hideValue
}

const (
	guardWeakens = "weakens a safety rule"
	guardSource  = "chooses where a secret comes from"
	guardDest    = "chooses where a secret goes"
	guardKey     = "chooses which key is made"
)

// guardedSettings are never taken from the working directory's config file
// and are announced when they come from the environment or the user's own
// config file. TestEverySettingIsClassified makes every new flag decide.
var guardedSettings = map[string]guard{
	"force":            {why: guardWeakens},
	"allow-unignored":  {why: guardWeakens},
	"master-file":      {why: guardSource},
	"registry":         {why: guardSource, hideValue: true, urlOnly: true},
	"psk-file":         {why: guardSource},
	"derive":           {why: guardSource},
	"random":           {why: guardSource},
	"epoch":            {why: guardKey},
	"keys":             {why: guardSource},
	"hmac-key":         {why: guardSource},
	"inputkey":         {why: guardSource},
	"keygen":           {why: guardSource},
	"key_protect_hmac": {why: guardSource},
	"kp_hmac_inputkey": {why: guardSource},
	"kp_hmac_keygen":   {why: guardSource},
	"value":            {why: guardSource, hideValue: true},
	"value-file":       {why: guardSource},
	"output":           {why: guardDest},
	"out":              {why: guardDest},
	"outdir":           {why: guardDest},
	"to":               {why: guardDest},
	"keyfile":          {why: guardDest},
	"kp_hmac_keyfile":  {why: guardDest},
	// An age recipient decides who can read an export of the keys.
	"recipient":       {why: guardDest},
	"recipients-file": {why: guardDest},
	"no-verify":       {why: guardWeakens},
}

// GuardedSetting reports whether the setting name is one the trust model
// keeps out of the working directory's config file (for generated docs).
func GuardedSetting(name string) bool {
	_, ok := guardedSettings[name]
	return ok
}

// configFile is one config file that was read.
type configFile struct {
	path    string
	trusted bool // the user's own file, or one named with --config
	v       *viper.Viper
}

// loadConfig reads the configuration for cmd, copies values into the flags
// the user did not set, and says on stderr what it ignored or took from
// outside the command line.
func loadConfig(f *Factory, cmd *cobra.Command, explicit string) error {
	files, userPath, err := readConfigFiles(f, explicit)
	if err != nil {
		return err
	}
	quiet := cmd.Name() == cobra.ShellCompRequestCmd || cmd.Name() == cobra.ShellCompNoDescRequestCmd
	if !quiet {
		warnUnknownSettings(f, cmd.Root(), files)
		warnIgnoredSettings(f, files, userPath)
	}
	sources := map[string]string{}
	var setErr error
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if setErr != nil || fl.Changed || fl.Name == "config" || fl.Name == "help" || isRootVersionFlag(cmd, fl) {
			return
		}
		val, src, ok := lookupSetting(f, files, fl.Name)
		if !ok {
			return
		}
		if err := cmd.Flags().Set(fl.Name, val); err != nil {
			setErr = &FlagError{Err: fmt.Errorf("invalid value for %s from %s (want %s)", fl.Name, src, valueWant(fl))}
			return
		}
		sources[fl.Name] = src
		// A key pasted into a setting is no more shown than one on argv.
		f.IO.cutKeysOf(val)
		g, guarded := guardedSettings[fl.Name]
		if guarded && g.hides(val) {
			// Not shown where it is announced, so not shown by any later
			// message either: they name it by where it came from.
			f.IO.hideValue(fl.Name, val, "the "+fl.Name+" set by "+src)
		}
		if guarded && !quiet && usesSetting(cmd, fl.Name) && applies(cmd, fl.Name) {
			announceSetting(f, fl.Name, val, src, g)
		}
	})
	if setErr != nil {
		return setErr
	}
	nvsValue := func(key string) string {
		if val, _, ok := lookupSetting(f, files, key); ok {
			return val
		}
		return nvsSettings()[key]
	}
	f.Config = &Config{
		NVSNamespace: nvsValue("nvs.namespace"),
		NVSIDKey:     nvsValue("nvs.id_key"),
		NVSPSKKey:    nvsValue("nvs.psk_key"),
		Sources:      sources,
	}
	return nil
}

// isRootVersionFlag reports whether fl is the root's --version switch,
// which no setting turns on: $USMP_PSK_VERSION is the NVS format version
// of the commands that write images.
func isRootVersionFlag(cmd *cobra.Command, fl *pflag.Flag) bool {
	return fl.Name == "version" && !cmd.HasParent() && fl.Value.Type() == "bool"
}

// envName is the variable that sets a setting: USMP_PSK_ and the name in
// upper case with '-' and '.' written '_'.
func envName(name string) string {
	return envPrefix + "_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// lookupSetting finds a setting in the environment, then in the config
// files in order of precedence, skipping guarded settings in files that are
// not trusted with them. An empty variable counts as unset.
func lookupSetting(f *Factory, files []configFile, name string) (val, src string, ok bool) {
	if v := f.Getenv(envName(name)); v != "" {
		return v, "$" + envName(name), true
	}
	_, guarded := guardedSettings[name]
	for _, c := range files {
		if c.v.IsSet(name) && (c.trusted || !guarded) {
			return c.v.GetString(name), c.path, true
		}
	}
	return "", "", false
}

// usesSetting reports whether cmd can be affected by the setting name, so
// that a global setting is announced by the commands it matters to and not
// by every command (version, fingerprint, ...). master-file is announced
// by Factory.Master when the file is read, since many runs of the commands
// that could need it do not.
func usesSetting(cmd *cobra.Command, name string) bool {
	path := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	group, _, _ := strings.Cut(path, " ")
	switch name {
	case "master-file":
		return false
	case "registry":
		return group == "registry" || slices.Contains([]string{"provision", "rotate", "verify", "batch"}, path)
	case "allow-unignored":
		// The commands that write secret files.
		return group == "registry" || slices.Contains([]string{"generate", "derive", "provision", "rotate", "batch",
			"nvs generate", "nvs encrypt", "nvs decrypt", "nvs generate-key", "nvs set", "nvs erase"}, path)
	}
	return true
}

// settingNeeds are the settings that apply only with a switch of the same
// command on (epoch with --derive): without it the command ignores them,
// so they are not announced either.
var settingNeeds = map[string]string{"epoch": "derive"}

// applies reports whether the setting name, taken from the environment or
// a file, has an effect on cmd (settingNeeds). Flags are visited in name
// order, so "derive" is set, from wherever, before "epoch" is looked at.
func applies(cmd *cobra.Command, name string) bool {
	need, ok := settingNeeds[name]
	if !ok {
		return true
	}
	fl := cmd.Flags().Lookup(need)
	return fl == nil || fl.Value.String() == "true"
}

// announceSetting says on stderr that a guarded setting came from outside
// the command line, and from where.
func announceSetting(f *Factory, name, val, src string, g guard) {
	if g.hides(val) {
		f.IO.Infof("%s: set by %s (the value is not shown)", name, src)
		return
	}
	f.IO.Infof("%s: %s from %s", name, val, src)
}

// readConfigFiles reads the config files in order of precedence: the file
// named with --config (or $USMP_PSK_CONFIG) alone, trusted; else
// ./usmp-psk.yaml (not trusted with guarded settings) over the user's own
// $XDG_CONFIG_HOME/usmp-psk/config.yaml (trusted). userPath is the latter,
// existing or not, for hints.
func readConfigFiles(f *Factory, explicit string) (files []configFile, userPath string, err error) {
	if explicit == "" {
		explicit = f.Getenv(envPrefix + "_CONFIG")
		// Like every USMP_PSK_ setting, a key pasted into it is cut out
		// of the messages that name the file.
		f.IO.cutKeysOf(explicit)
	}
	userPath = userConfigPath(f)
	if explicit != "" {
		c, err := readConfigFileInterruptibly(f, explicit, true)
		if err != nil {
			return nil, userPath, err
		}
		return []configFile{c}, userPath, nil
	}
	for _, cand := range []struct {
		path    string
		trusted bool
	}{{"./" + workDirConfig, false}, {userPath, true}} {
		if cand.path == "" {
			continue
		}
		if _, err := os.Stat(cand.path); err != nil {
			continue
		}
		c, err := readConfigFileInterruptibly(f, cand.path, cand.trusted)
		if err != nil {
			return nil, userPath, err
		}
		files = append(files, c)
	}
	return files, userPath, nil
}

// userConfigPath is $XDG_CONFIG_HOME/usmp-psk/config.yaml, with
// ~/.config when XDG_CONFIG_HOME is unset; "" without either.
func userConfigPath(f *Factory) string {
	base := f.Getenv("XDG_CONFIG_HOME")
	if base == "" {
		if home := f.Getenv("HOME"); home != "" {
			base = filepath.Join(home, ".config")
		}
	}
	if base == "" {
		return ""
	}
	return filepath.Join(base, "usmp-psk", "config.yaml")
}

// readConfigFileInterruptibly is readConfigFile in a goroutine that an
// interrupt stops waiting for: a config file can be a FIFO or a pipe
// (--config <(…)) that never delivers, or that fails to parse because
// Ctrl-C killed its writer (issue 13 item 6).
func readConfigFileInterruptibly(f *Factory, path string, trusted bool) (configFile, error) {
	stream := isStream(path)
	return readInterruptibly(f, func() (configFile, error) { return readConfigFile(path, trusted) }, nil,
		func(_ configFile, err error) bool { return stream && err != nil })
}

// readConfigFile parses one YAML config file. A file that does not exist
// or does not parse is an error (exit 2); the message never quotes it.
func readConfigFile(path string, trusted bool) (configFile, error) {
	v := viper.New()
	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return configFile{}, inputError(fmt.Errorf("config file %s does not exist", path))
		}
		return configFile{}, inputError(fmt.Errorf("config file %s: cannot be parsed as YAML", path))
	}
	return configFile{path: path, trusted: trusted, v: v}, nil
}

// secretLikeName matches unknown settings that were probably meant to hold
// a secret, which is never configuration.
var secretLikeName = regexp.MustCompile(`(?i)secret|psk|pass|token|master`)

// warnUnknownSettings warns about every key of a config file that no
// command knows: a typo (forse) would otherwise be silently ignored. A key
// that looks like key material is not repeated.
func warnUnknownSettings(f *Factory, root *cobra.Command, files []configFile) {
	known := knownSettings(root)
	for _, c := range files {
		for _, key := range c.v.AllKeys() {
			if known[key] {
				continue
			}
			switch {
			case psk.LooksLikeKey(key) || !printableSetting(key):
				f.IO.Warnf("%s: an unknown setting whose name looks like key material (not repeated); remove it", c.path)
			case secretLikeName.MatchString(key):
				f.IO.Warnf("%s: unknown setting %q (ignored); secrets are never configuration: the master secret comes from --master-file, $%s or the prompt", c.path, key, psk.MasterEnv)
			default:
				f.IO.Warnf("%s: unknown setting %q (ignored; the settings are the flags' names, see docs/configuration.md)", c.path, key)
			}
		}
	}
}

// printableSetting reports whether a key name may be repeated: a short
// name of letters, digits and - _ . (nested keys are dotted).
func printableSetting(key string) bool {
	if len(key) > 64 {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.", c) >= 0) {
			return false
		}
	}
	return true
}

// knownSettings are the names of every flag of every command (but --help
// and --config, which a config file cannot set) and the nvs.* keys.
func knownSettings(root *cobra.Command) map[string]bool {
	known := map[string]bool{}
	for k := range nvsSettings() {
		known[k] = true
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(fl *pflag.Flag) { known[fl.Name] = true }
		c.LocalFlags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	delete(known, "help")
	delete(known, "config")
	return known
}

// warnIgnoredSettings names the guarded settings found in a config file
// that is not trusted with them, once per file.
func warnIgnoredSettings(f *Factory, files []configFile, userPath string) {
	for _, c := range files {
		if c.trusted {
			continue
		}
		var ignored []string
		for _, key := range c.v.AllKeys() {
			if _, guarded := guardedSettings[key]; guarded {
				ignored = append(ignored, key)
			}
		}
		if len(ignored) == 0 {
			continue
		}
		slices.Sort(ignored)
		where := "your own config file"
		if userPath != "" {
			where = userPath
		}
		f.IO.Warnf("ignoring %s in %s: settings that weaken a safety rule or choose where a secret comes from or goes are never taken from the working directory's config file (it may have come with the directory); pass them as flags, or put them in %s or a file named with --config",
			strings.Join(ignored, ", "), c.path, where)
	}
}
