package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/provision"
)

type flashOptions struct {
	image          string
	port           string
	baud           int
	chip           string
	partitionTable string
	partitionName  string
	offset         string
	printOnly      bool
	json           bool
}

func newFlashCmd(f *Factory, runF func(*flashOptions) error) *cobra.Command {
	opts := &flashOptions{}
	cmd := &cobra.Command{
		Use:   "flash IMAGE --port PORT [--partition-table TABLE] [--print]",
		Short: "Write an NVS image to a device with esptool",
		Long: `Write an NVS image to the device's nvs partition with esptool (found on PATH
as esptool.py or esptool): at 0x9000 by default, or at the offset of the
partition named nvs (--partition NAME) in --partition-table.

esptool runs with a minimal, explicit environment and no secret in its
arguments. Without esptool, or with --print, the exact command is printed on
stdout instead (exit 1 when esptool was wanted but not found).`,
		Example: `  $ usmp-psk flash device-id-1.bin --port /dev/ttyUSB0
  $ usmp-psk flash dev.bin --port /dev/ttyUSB0 --partition-table partitions.csv
  $ usmp-psk flash dev.bin --port COM3 --print`,
		Args: exactArgs(1, "IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			if opts.port == "" {
				return flagErrorf("--port PORT is required (for example /dev/ttyUSB0 or COM3)")
			}
			if runF != nil {
				return runF(opts)
			}
			return runFlash(f, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.port, "port", "", "serial `PORT` of the device")
	fl.IntVar(&opts.baud, "baud", 460800, "serial speed")
	fl.StringVar(&opts.chip, "chip", "auto", "esptool --chip value")
	fl.StringVar(&opts.partitionTable, "partition-table", "", "take the offset from this `TABLE` (CSV or binary)")
	fl.StringVar(&opts.partitionName, "partition", "nvs", "partition `NAME` in --partition-table")
	fl.StringVar(&opts.offset, "offset", "", "flash `OFFSET` (overrides the partition table; default 0x9000)")
	fl.BoolVar(&opts.printOnly, "print", false, "print the esptool command instead of running it")
	addFlashJSONFlag(cmd, &opts.json)
	cmd.MarkFlagsMutuallyExclusive("offset", "partition-table")
	return cmd
}

// esptoolEnv is the explicit environment of esptool (R4, R27): what Python
// and a serial port need, nothing else — never a secret.
func esptoolEnv(getenv func(string) string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV", "PYTHONPATH", "IDF_PATH", "ESPTOOL_CFGFILE"} {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func runFlash(f *Factory, opts *flashOptions) error {
	fi, err := os.Stat(opts.image)
	if err != nil {
		return &FlagError{Err: fmt.Errorf("image: %w", err)}
	}
	offset := int64(provision.DefaultOffset)
	switch {
	case opts.offset != "":
		n, err := parseFlashOffset(opts.offset)
		if err != nil {
			return err
		}
		offset = n
	case opts.partitionTable != "":
		p, err := findPartition(opts.partitionTable, opts.partitionName)
		if err != nil {
			return err
		}
		if fi.Size() > int64(p.Size) {
			return flagErrorf(fmt.Sprintf("%s is %d bytes but partition %s is only %d", opts.image, fi.Size(), p.Name, p.Size))
		}
		offset = int64(p.Offset)
	}
	args := []string{"--chip", opts.chip, "--port", opts.port, "--baud", fmt.Sprint(opts.baud), "write_flash", fmt.Sprintf("0x%x", offset), opts.image}
	tool := ""
	for _, name := range []string{"esptool.py", "esptool"} {
		if p, err := exec.LookPath(name); err == nil {
			tool = p
			break
		}
	}
	if opts.printOnly || tool == "" {
		name := "esptool.py"
		if tool != "" {
			name = tool
		}
		if err := reportFlash(f, opts, flashReport{Image: opts.image, Port: opts.port, Offset: offset, Bytes: fi.Size(), Command: append([]string{name}, args...)}); err != nil {
			return err
		}
		if tool == "" && !opts.printOnly {
			return errors.New("esptool not found on PATH (install it with 'pip install esptool'); nothing was flashed — the command above would do it")
		}
		return nil
	}
	f.IO.Infof("flashing %s to %s at 0x%x", opts.image, opts.port, offset)
	c := exec.Command(tool, args...)
	c.Env = esptoolEnv(f.Getenv)
	c.Stdin, c.Stdout, c.Stderr = nil, f.IO.ErrOut, f.IO.ErrOut
	if err := c.Run(); err != nil {
		return fmt.Errorf("esptool failed: %w", err)
	}
	f.IO.Infof("flashed %s (%d bytes) at 0x%x", opts.image, fi.Size(), offset)
	return reportFlash(f, opts, flashReport{Image: opts.image, Port: opts.port, Offset: offset, Bytes: fi.Size(), Flashed: true})
}

// parseFlashOffset parses --offset as esptool reads an address (Python's
// int(x, 0): decimal, 0x, 0o or 0b). The whole text must be the number:
// fmt.Sscan stopped at the first character it could not use, so 0x9000zz
// and 36864.9 flashed at 0x9000 (issue 13 item 8). The rejected text is not
// repeated (item 5).
func parseFlashOffset(s string) (int64, error) {
	n, err := strconv.ParseUint(s, 0, 32)
	switch {
	case err != nil:
		return 0, flagErrorf("--offset must be a number (decimal, 0x, 0o or 0b) below 4 GiB, like 0x9000")
	case n%4096 != 0:
		return 0, flagErrorf("--offset must be a multiple of 0x1000, like 0x9000")
	}
	return int64(n), nil
}

// shellQuote renders argv for a POSIX shell.
func shellQuote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}
