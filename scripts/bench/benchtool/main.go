// Command benchtool is the measuring half of scripts/bench-batch.sh (issue 7,
// design §8): the floor a factory batch is compared with, and a wall-clock
// timer for the other contenders. It is not shipped.
//
//	benchtool floor DIR N [SIZE [PREFIX]]
//	    create DIR, then N files PREFIX<i>.bin of SIZE bytes (default 0x6000)
//	    in it, single-threaded: open exclusive, write, close (three system
//	    calls per file, as the batch makes them), nothing else.
//	    Prints the seconds the N files took (the loop alone).
//	benchtool time OUT CMD [ARG...]
//	    run CMD with its standard output sent to the file OUT (standard
//	    error passes through) and print its wall-clock seconds and the CPU
//	    seconds (user + system, all threads) it used. CMD's exit status is
//	    benchtool's.
//
// File names follow the batch's ids: PREFIX (default "fac-") and the number
// zero-padded to the width of N, so both write the same names.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/usmp/usmp-psk/internal/rawfile"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "floor":
		err = floor(os.Args[2:])
	case "time":
		err = timeCmd(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool floor DIR N [SIZE [PREFIX]] | benchtool time OUT CMD [ARG...]")
	os.Exit(2)
}

// floor is the cost of creating the batch's files and nothing else.
func floor(args []string) error {
	if len(args) < 2 || len(args) > 4 {
		usage()
	}
	dir := args[0]
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 1 {
		return fmt.Errorf("count: want a positive number, got %q", args[1])
	}
	size := 0x6000
	if len(args) > 2 {
		s, err := strconv.ParseInt(args[2], 0, 32)
		if err != nil || s < 1 {
			return fmt.Errorf("size: want a positive size, got %q", args[2])
		}
		size = int(s)
	}
	prefix := "fac-"
	if len(args) > 3 {
		prefix = args[3]
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = 0xff
	}
	// The names are made before the clock starts: the floor is the file
	// system's cost, not fmt's.
	width := len(strconv.Itoa(n))
	names := make([]string, n)
	for i := range names {
		names[i] = filepath.Join(dir, fmt.Sprintf("%s%0*d.bin", prefix, width, i+1))
	}
	start := time.Now()
	for _, name := range names {
		// Three system calls, as the batch makes them (os.OpenFile would
		// add five: internal/rawfile says why).
		if err := rawfile.WriteNew(name, data, 0o600); err != nil {
			return err
		}
	}
	fmt.Printf("%.6f\n", time.Since(start).Seconds())
	return nil
}

// timeCmd runs a command and prints its wall-clock and CPU time. On a
// machine shared with other work the wall clock follows the CPU time that
// the command gets, so both are reported.
func timeCmd(args []string) error {
	if len(args) < 2 {
		usage()
	}
	out, err := os.Create(args[0])
	if err != nil {
		return err
	}
	defer out.Close()
	//secretcheck:ignore exec-env the timed command is the program under test and runs in the benchmark's own environment (a fixed, non-secret bench master); benchtool is not shipped
	cmd := exec.Command(args[1], args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, out, os.Stderr
	start := time.Now()
	err = cmd.Run()
	elapsed := time.Since(start)
	if err != nil {
		return err
	}
	ps := cmd.ProcessState
	fmt.Printf("%.6f %.6f\n", elapsed.Seconds(), (ps.UserTime() + ps.SystemTime()).Seconds())
	return nil
}
