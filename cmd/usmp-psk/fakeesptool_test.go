package main

// fake-esptool stands in for Espressif's esptool in the flash and verify
// --port scripts (issue 15 part 3). It keeps a device's flash memory in a
// file, serves read-flash/read_flash from it and takes write-flash/
// write_flash into it, parsing its argv as strictly as the esptool version
// it plays (v4: underscores only, argparse; v5: hyphens, underscores with
// a deprecation warning), and records every argv and environment, so the
// scripts can check what esptool v4 and v5 accept and run the R22 scan over
// what the child got.
//
// A script installs it under esptool's names with the fakeesptool command:
//
//	fakeesptool NAME VERSION [-corrupt] [-fail] [-hang] [-short]
//
// writes $WORK/bin/NAME, a shell script that runs
//
//	fake-esptool -version VERSION -flash $WORK/flash.bin -log $WORK/NAME [flags] -- "$@"
//
// and records to $WORK/NAME-argv.txt (one invocation a line),
// $WORK/NAME-env.txt (the environment of each) and $WORK/NAME-files.txt
// (the modes of each read-back file and its directory). -corrupt flips a
// byte of what is written, -fail fails to connect, -hang never finishes a
// read (it writes its pid to $WORK/NAME-hanging first), -short reads 100
// bytes less.

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/usmp/usmp-psk/internal/sighold"
)

// fakeEsptoolMain is the fake-esptool program (testscript.Main).
func fakeEsptoolMain() {
	sighold.Release() // Go's own signal handling: this is no usmp-psk run (main.go holds them)
	os.Exit(fakeEsptool(os.Args[1:]))
}

type fakeEsp struct {
	major                       int
	version, flash, log         string
	corrupt, fail, hang, short  bool
	chip, port, baud, operation string
	args                        []string
}

func fakeEsptool(argv []string) int {
	var e fakeEsp
	fs := flag.NewFlagSet("fake-esptool", flag.ContinueOnError)
	fs.StringVar(&e.version, "version", "5.1.0", "")
	fs.StringVar(&e.flash, "flash", "", "")
	fs.StringVar(&e.log, "log", "", "")
	fs.BoolVar(&e.corrupt, "corrupt", false, "")
	fs.BoolVar(&e.fail, "fail", false, "")
	fs.BoolVar(&e.hang, "hang", false, "")
	fs.BoolVar(&e.short, "short", false, "")
	if err := fs.Parse(argv); err != nil || e.flash == "" || e.log == "" {
		fmt.Fprintln(os.Stderr, "fake-esptool: bad setup:", err)
		return 99
	}
	e.major, _ = strconv.Atoi(strings.SplitN(e.version, ".", 2)[0])
	args := fs.Args()
	e.record(args)
	if err := e.parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "usage: esptool [-h] ...\nesptool: error: %v\n", err)
		return 2
	}
	if e.operation == "version" {
		fmt.Println(e.header())
		fmt.Println(e.version)
		return 0
	}
	fmt.Println(e.header())
	// As the real one does: it names the port, which usmp-psk passes on
	// to stderr (redacted like its own messages).
	fmt.Printf("Serial port %s\r\nConnecting....\n", e.port)
	if e.fail {
		fmt.Println("A fatal error occurred: Failed to connect to ESP32: No serial data received.")
		return 2
	}
	var err error
	switch e.operation {
	case "read":
		err = e.read()
	case "write":
		err = e.write()
	}
	if err != nil {
		fmt.Println("A fatal error occurred:", err)
		return 2
	}
	return 0
}

func (e *fakeEsp) header() string {
	if e.major >= 5 {
		return "esptool v" + e.version
	}
	return "esptool.py v" + e.version
}

// record appends argv and the environment to the logs.
func (e *fakeEsp) record(args []string) {
	appendFile(e.log+"-argv.txt", strings.Join(args, " ")+"\n")
	appendFile(e.log+"-env.txt", strings.Join(os.Environ(), "\n")+"\n")
}

func appendFile(path, s string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		panic(err)
	}
}

// parse reads the global options and the command the way the real
// esptool of that version does (only the options usmp-psk may pass).
func (e *fakeEsp) parse(args []string) error {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		opt := args[0]
		if len(args) < 2 {
			return fmt.Errorf("argument %s: expected one argument", opt)
		}
		switch opt {
		case "--chip", "-c":
			if c := args[1]; c != "auto" && !strings.HasPrefix(c, "esp32") {
				return fmt.Errorf("argument --chip: invalid choice: %q", c)
			}
			e.chip = args[1]
		case "--port", "-p":
			e.port = args[1]
		case "--baud", "-b":
			if _, err := strconv.ParseUint(args[1], 0, 32); err != nil {
				return fmt.Errorf("argument --baud: invalid arg_auto_int value: %q", args[1])
			}
			e.baud = args[1]
		default:
			return fmt.Errorf("unrecognized arguments: %s", opt)
		}
		args = args[2:]
	}
	if len(args) == 0 {
		return errors.New("the following arguments are required: operation")
	}
	cmd, rest := args[0], args[1:]
	canonical := map[string]string{"version": "version", "read-flash": "read", "write-flash": "write", "read_flash": "read", "write_flash": "write"}
	op, known := canonical[cmd]
	switch {
	case !known, e.major < 5 && strings.Contains(cmd, "-"):
		return fmt.Errorf("argument operation: invalid choice: %q", cmd)
	case e.major >= 5 && strings.Contains(cmd, "_"):
		fmt.Printf("Warning: Deprecated: Command '%s' is deprecated. Use '%s' instead.\n", cmd, strings.ReplaceAll(cmd, "_", "-"))
	}
	e.operation, e.args = op, rest
	if op != "version" && e.port == "" {
		return errors.New("the fake wants --port: usmp-psk always names the port")
	}
	switch {
	case op == "read" && len(rest) != 3:
		return fmt.Errorf("read_flash takes address size filename, got %d arguments", len(rest))
	case op == "write" && (len(rest) == 0 || len(rest)%2 != 0):
		return errors.New("write_flash takes <address> <filename> pairs")
	}
	return nil
}

// number parses an address or size as Python's int(x, 0).
func number(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid arg_auto_int value: %q", s)
	}
	return n, nil
}

// read serves read_flash ADDRESS SIZE FILE from the flash file (0xFF past
// its end: erased flash), opening FILE as Python's open(FILE, "wb") does.
func (e *fakeEsp) read() error {
	addr, err := number(e.args[0])
	if err != nil {
		return err
	}
	size, err := number(e.args[1])
	if err != nil {
		return err
	}
	out := e.args[2]
	fileMode, dirMode := "absent", "absent"
	if fi, err := os.Stat(out); err == nil {
		fileMode = fmt.Sprintf("%04o", fi.Mode().Perm())
	}
	if fi, err := os.Stat(filepath.Dir(out)); err == nil {
		dirMode = fmt.Sprintf("%04o", fi.Mode().Perm())
	}
	appendFile(e.log+"-files.txt", fmt.Sprintf("read-back file %s directory %s\n", fileMode, dirMode))
	flash := readFlashFile(e.flash)
	data := make([]byte, size)
	for i := range data {
		data[i] = 0xFF
		if p := addr + int64(i); p < int64(len(flash)) {
			data[i] = flash[p]
		}
	}
	if e.short {
		data = data[:len(data)-100]
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if e.hang {
		f.Close()
		appendFile(e.log+"-hanging", strconv.Itoa(os.Getpid()))
		time.Sleep(2 * time.Minute)
		return errors.New("hung for 2 minutes without being stopped")
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	fmt.Printf("Read %d bytes at 0x%08x\n", len(data), addr)
	return f.Close()
}

// write takes write_flash ADDRESS FILE... into the flash file.
func (e *fakeEsp) write() error {
	flash := readFlashFile(e.flash)
	for i := 0; i < len(e.args); i += 2 {
		addr, err := number(e.args[i])
		if err != nil {
			return err
		}
		data, err := os.ReadFile(e.args[i+1])
		if err != nil {
			return err
		}
		if e.corrupt && len(data) > 0 {
			data[len(data)/2] ^= 0x40
		}
		for int64(len(flash)) < addr+int64(len(data)) {
			flash = append(flash, 0xFF)
		}
		copy(flash[addr:], data)
		fmt.Printf("Wrote %d bytes at 0x%08x\nHash of data verified.\n", len(data), addr)
	}
	return os.WriteFile(e.flash, flash, 0o600)
}

func readFlashFile(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		panic(err)
	}
	return b
}

// fakeEsptoolPath is the fake-esptool program testscript.Main put on PATH.
func fakeEsptoolPath() (string, error) { return exec.LookPath("fake-esptool") }

// cmdFakeEsptool installs fake-esptool as $WORK/bin/NAME:
// fakeesptool NAME VERSION [-corrupt] [-fail] [-hang] [-short]
func cmdFakeEsptool(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: fakeesptool NAME VERSION [-corrupt] [-fail] [-hang] [-short]")
	}
	prog, err := fakeEsptoolPath()
	ts.Check(err)
	work := ts.Getenv("WORK")
	bin := filepath.Join(work, "bin")
	ts.Check(os.MkdirAll(bin, 0o755))
	script := fmt.Sprintf("#!/bin/sh\nexec '%s' -version %s -flash '%s' -log '%s' %s -- \"$@\"\n",
		prog, args[1], filepath.Join(work, "flash.bin"), filepath.Join(work, args[0]), strings.Join(args[2:], " "))
	ts.Check(os.WriteFile(filepath.Join(bin, args[0]), []byte(script), 0o755))
}
