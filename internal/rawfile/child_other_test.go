//go:build !unix

package rawfile

import "errors"

func child(string) error { return errors.New("not supported") }
