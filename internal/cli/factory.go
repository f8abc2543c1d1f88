package cli

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"time"

	"github.com/usmp/usmp-psk/internal/provision"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
	"github.com/usmp/usmp-psk/internal/secfile"
)

// Factory carries the dependencies of every command (house style §6).
type Factory struct {
	IO   *IOStreams
	Now  func() time.Time
	Rand io.Reader
	// Getenv reads non-secret environment variables (CI job ids, XDG paths).
	Getenv func(string) string

	// masterEnv is $USMP_MASTER_SECRET as it was at start-up; Main unsets
	// the variable at once so children never inherit it (R4).
	masterEnv    string
	hasMasterEnv bool

	// registryKeyEnv is $USMP_REGISTRY_KEY (the registry's
	// sealing key), also taken out of the environment at start-up.
	registryKeyEnv    string
	hasRegistryKeyEnv bool
	// registryNewKeyEnv is $USMP_REGISTRY_NEW_KEY (registry rekey).
	registryNewKeyEnv    string
	hasRegistryNewKeyEnv bool

	// ctx is the context of the run in progress (set by run), cancelled
	// by an interrupt. It is here rather than passed down because reads
	// of secrets happen in helpers the commands call without one (Master,
	// readKeyInput); see readInterruptibly.
	ctx context.Context

	// masterFileAnnounced is set once a master-file that came from the
	// environment or a config file has been announced.
	masterFileAnnounced bool

	// masterCheckable reports whether something will check a master typed
	// at the prompt (the registry's KCVs); when it is nil or false, the
	// prompt asks twice (confirmMasterPrompt). Set by the root's
	// PersistentPreRunE for the command being run.
	masterCheckable func() bool

	// Config is filled by the root's PersistentPreRunE from flags,
	// USMP_PSK_* variables and the config file.
	Config *Config

	// stepHook is MainOptions.StepHook: nil in production.
	stepHook func(ctx context.Context, step, path string)
}

// fileOptions are the secret-file options of this run: replace and the
// git guard's override as given, the override's source named in its
// warning, warnings on stderr, and the test binary's step hook.
func (f *Factory) fileOptions(replace, allowUnignored bool) secfile.Options {
	return secfile.Options{Replace: replace, AllowUnignored: allowUnignored, AllowUnignoredBy: settingBy(f, "allow-unignored"),
		Warn: f.IO.Warn, StepHook: f.fileStepHook()}
}

// fileOptionsFor is fileOptions for a command's options: called at run
// time, once --allow-unignored is parsed.
func (f *Factory) fileOptionsFor(root *rootOptions) func(replace bool) secfile.Options {
	return func(replace bool) secfile.Options { return f.fileOptions(replace, root.allowUnignored) }
}

// layout is where images keep the id and the key: the nvs.* settings of
// this run (filled by the root's PersistentPreRunE).
func (f *Factory) layout() provision.Layout {
	return provision.Layout{Namespace: f.Config.NVSNamespace, IDKey: f.Config.NVSIDKey, PSKKey: f.Config.NVSPSKKey}
}

// fileStepHook is the test binary's step hook bound to this run's context,
// for secfile.Options, provision.BatchSpec and interruptibly; nil in
// production.
func (f *Factory) fileStepHook() func(step, path string) {
	if f.stepHook == nil {
		return nil
	}
	return func(step, path string) { f.stepHook(f.ctx, step, path) }
}

// newSystemFactory builds the production factory, taking the master secret
// out of the environment.
func newSystemFactory() *Factory {
	v, ok := os.LookupEnv(psk.MasterEnv)
	_ = os.Unsetenv(psk.MasterEnv)
	rk, rkOK := os.LookupEnv(registry.RegistryKeyEnv)
	_ = os.Unsetenv(registry.RegistryKeyEnv)
	nk, nkOK := os.LookupEnv(registryNewKeyEnv)
	_ = os.Unsetenv(registryNewKeyEnv)
	return &Factory{
		registryKeyEnv:       rk,
		hasRegistryKeyEnv:    rkOK,
		registryNewKeyEnv:    nk,
		hasRegistryNewKeyEnv: nkOK,
		IO:                   System(),
		Now:                  time.Now,
		Rand:                 rand.Reader,
		Getenv:               os.Getenv,
		masterEnv:            v,
		hasMasterEnv:         ok,
		Config:               defaultConfig(),
	}
}

// masterLoader is Master for a command's options: called at run time,
// once --master-file is parsed, and only when the command needs the master.
func (f *Factory) masterLoader(root *rootOptions) func() (*psk.Secret, error) {
	return func() (*psk.Secret, error) { return f.Master(root.masterFile) }
}

// Master loads the master secret from --master-file, the captured
// environment value or the terminal prompt (design §4).
func (f *Factory) Master(masterFile string) (*psk.Secret, error) {
	if src, ok := f.Config.Sources["master-file"]; ok && masterFile != "" && !f.masterFileAnnounced {
		f.masterFileAnnounced = true
		f.IO.Infof("master-file: %s from %s", masterFile, src)
	}
	src := psk.MasterSources{
		File:   masterFile,
		FileBy: settingBy(f, "master-file"),
		Env:    f.masterEnv,
		HasEnv: f.hasMasterEnv,
		Warn:   f.IO.Warn,
	}
	if p := f.IO.prompter; p != nil && p.Available() {
		src.Prompt = f.masterPrompt(p)
	}
	if masterFile == "" {
		// The environment, or the prompt, which restores the terminal and
		// exits 130 itself on an interrupt.
		return psk.LoadMaster(src)
	}
	// A master file can be a FIFO or a pipe (<(pass show …)) that never
	// delivers; an error from one may be an interrupt's doing.
	stream := isStream(masterFile)
	return readInterruptibly(f, func() (*psk.Secret, error) { return psk.LoadMaster(src) },
		func(s *psk.Secret) { s.Destroy() },
		func(_ *psk.Secret, err error) bool { return stream && err != nil })
}
