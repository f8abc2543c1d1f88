package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// auditFixture makes a registry with 7 audit entries: init, 5 adds, revoke.
func auditFixture(t *testing.T) *testEnv {
	t.Helper()
	e := newEnv(t)
	ctx := context.Background()
	master := canaryMaster(t)
	if err := e.reg.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"dev-1", "dev-2", "dev-3", "dev-4", "dev-5"} {
		if _, err := e.reg.Add(ctx, id, Derived(master, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.reg.Revoke(ctx, "dev-2", "lost"); err != nil {
		t.Fatal(err)
	}
	return e
}

func auditLines(t *testing.T, path string) [][]byte {
	t.Helper()
	lines := bytes.SplitAfter(readFile(t, path), []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// rehash recomputes the hash of a (tampered) line, as an attacker who knows
// the canonical form would.
func rehash(t *testing.T, line []byte) []byte {
	t.Helper()
	l := bytes.TrimSuffix(line, []byte("\n"))
	canon := append(append([]byte(nil), l[:len(l)-1-hashSuffixLen]...), '}')
	out, _ := appendAuditLineRaw(canon)
	return out
}

// appendAuditLineRaw hashes an already canonical object (test helper).
func appendAuditLineRaw(canon []byte) ([]byte, string) {
	sum := sha256Hex(canon)
	out := append(append([]byte(nil), canon[:len(canon)-1]...), `,"hash":"`+sum+`"}`+"\n"...)
	return out, sum
}

// TestAuditChain: the chain is intact after every operation, and every kind
// of tampering is found at the right line (design §5, exit 3 in the CLI).
func TestAuditChain(t *testing.T) {
	tests := []struct {
		name string
		edit func(t *testing.T, lines [][]byte) [][]byte
		// chainLine/chainMsg: what VerifyAudit(path) says (0: intact chain).
		chainLine int
		chainMsg  string
		// regMsg: what Registry.VerifyAudit adds when the chain is intact.
		regMsg string
	}{
		{"intact", func(t *testing.T, l [][]byte) [][]byte { return l }, 0, "", ""},
		{"edited field", func(t *testing.T, l [][]byte) [][]byte {
			l[2] = bytes.Replace(l[2], []byte(`"dev-2"`), []byte(`"dev-9"`), 1)
			return l
		}, 3, "the hash does not match the line's content", ""},
		{"edited and rehashed", func(t *testing.T, l [][]byte) [][]byte {
			l[2] = rehash(t, bytes.Replace(l[2], []byte(`"dev-2"`), []byte(`"dev-9"`), 1))
			return l
		}, 4, "prev does not match the hash of line 3", ""},
		{"reformatted", func(t *testing.T, l [][]byte) [][]byte {
			l[1] = bytes.Replace(l[1], []byte(`"seq":2,`), []byte(`"seq": 2,`), 1)
			return l
		}, 2, "not in canonical form", ""},
		{"deleted line", func(t *testing.T, l [][]byte) [][]byte { return append(l[:3:3], l[4:]...) }, 4, "seq is 5, expected 4", ""},
		{"deleted first line", func(t *testing.T, l [][]byte) [][]byte { return l[1:] }, 1, "seq is 2, expected 1", ""},
		{"reordered", func(t *testing.T, l [][]byte) [][]byte { l[3], l[4] = l[4], l[3]; return l }, 4, "seq is 5, expected 4", ""},
		{"inserted empty line", func(t *testing.T, l [][]byte) [][]byte {
			return append(l[:2:2], append([][]byte{[]byte("\n")}, l[2:]...)...)
		}, 3, "damaged", ""},
		{"cut in the last line", func(t *testing.T, l [][]byte) [][]byte {
			l[len(l)-1] = l[len(l)-1][:40]
			return l
		}, 7, "incomplete last line", ""},
		{"last line removed", func(t *testing.T, l [][]byte) [][]byte { return l[:len(l)-1] }, 0, "", "truncated"},
		{"replaced by a valid shorter log", func(t *testing.T, l [][]byte) [][]byte { return l[:2] }, 0, "", "truncated"},
		{"emptied", func(t *testing.T, l [][]byte) [][]byte { return nil }, 0, "", "truncated"},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := auditFixture(t)
			ap := AuditPath(e.path)
			lines := auditLines(t, ap)
			if len(lines) != 7 {
				t.Fatalf("%d lines", len(lines))
			}
			if err := os.WriteFile(ap, bytes.Join(tt.edit(t, lines), nil), 0o600); err != nil {
				t.Fatal(err)
			}
			err := VerifyAudit(ap)
			if tt.chainLine == 0 {
				if err != nil {
					t.Fatalf("chain: %v", err)
				}
			} else {
				var ae *AuditError
				if !errors.As(err, &ae) || ae.Line != tt.chainLine || !strings.Contains(ae.Msg, tt.chainMsg) || !errors.Is(err, ErrAudit) {
					t.Fatalf("chain: %v; want line %d %q", err, tt.chainLine, tt.chainMsg)
				}
				var vf verifyFailed
				if !errors.As(err, &vf) || !vf.VerifyFailed() {
					t.Fatal("not marked as a failed verification")
				}
			}
			_, err = e.reg.VerifyAudit(ctx)
			switch {
			case tt.chainLine == 0 && tt.regMsg == "":
				if err != nil {
					t.Fatalf("registry audit: %v", err)
				}
				return
			case tt.regMsg != "":
				if !errors.Is(err, ErrAudit) || !strings.Contains(err.Error(), tt.regMsg) {
					t.Fatalf("registry audit: %v; want %q", err, tt.regMsg)
				}
			default:
				if !errors.Is(err, ErrAudit) {
					t.Fatalf("registry audit: %v", err)
				}
			}
			// registry check reports the damaged log as a finding.
			rep, cerr := e.reg.Check(ctx, nil)
			if cerr != nil || len(rep.Findings) == 0 || rep.Findings[0].Field != "audit" {
				t.Fatalf("check: %v %+v", cerr, rep)
			}
		})
	}
}

// TestAuditWritersRefuseDamage: a writer does not append to a log that was
// truncated, deleted or edited at its end (which would hide the damage), and
// changes nothing (docs/registry.md §6) — also not a committed last line
// that was cut short, which is damage, not an interrupted append: it stays
// for 'registry audit' to report.
func TestAuditWritersRefuseDamage(t *testing.T) {
	tests := []struct {
		name string
		edit func(ap string, lines [][]byte) error
		msg  string
	}{
		{"deleted", func(ap string, _ [][]byte) error { return os.Remove(ap) }, "missing, but the registry records 7 entries"},
		{"last line removed", func(ap string, l [][]byte) error { return os.WriteFile(ap, bytes.Join(l[:len(l)-1], nil), 0o600) }, "line 6: the log ends at entry 6 but the registry records entry 7"},
		{"last line edited", func(ap string, l [][]byte) error {
			l[len(l)-1] = bytes.Replace(l[len(l)-1], []byte("lost"), []byte("lust"), 1)
			l[len(l)-1] = bytes.Replace(l[len(l)-1], []byte(`"dev-2"`), []byte(`"dev-3"`), 1)
			return os.WriteFile(ap, bytes.Join(l, nil), 0o600)
		}, "last line: the hash does not match"},
		{"cut in the last line", func(ap string, l [][]byte) error {
			l[len(l)-1] = l[len(l)-1][:50]
			return os.WriteFile(ap, bytes.Join(l, nil), 0o600)
		}, "line 7: incomplete last line, but the registry records entry 7: the log was cut short"},
		{"committed last line cut before its newline", func(ap string, l [][]byte) error {
			l[len(l)-1] = bytes.TrimSuffix(l[len(l)-1], []byte("\n"))
			return os.WriteFile(ap, bytes.Join(l, nil), 0o600)
		}, "line 7: incomplete last line, but the registry records entry 7"},
		{"only a cut first line", func(ap string, l [][]byte) error {
			return os.WriteFile(ap, l[0][:40], 0o600)
		}, "line 1: incomplete last line, but the registry records entry 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := auditFixture(t)
			ap := AuditPath(e.path)
			if err := tt.edit(ap, auditLines(t, ap)); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, filepath.Dir(e.path))
			_, err := e.reg.Add(context.Background(), "dev-6", Random())
			if !errors.Is(err, ErrAudit) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("writer: %v, want %q", err, tt.msg)
			}
			if after := snapshot(t, filepath.Dir(e.path)); after != before {
				t.Fatalf("the refused writer changed the directory:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if w := e.warnings(); len(w) > 0 {
				t.Fatalf("warnings %q", w)
			}
		})
	}
}

// TestAuditInterruptedAppend: a writer killed in the middle of an append
// leaves an incomplete line; the next writer removes it (with a warning) and
// the chain stays intact. Entries appended by a writer that died before
// replacing the registry are reported as uncommitted, not as damage.
func TestAuditInterruptedAppend(t *testing.T) {
	e := auditFixture(t)
	ctx := context.Background()
	ap := AuditPath(e.path)
	full := readFile(t, ap)

	// Entries of a commit that never reached the registry.
	l, err := openAuditLog(ap, AuditHead{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.append([]AuditEvent{{Time: t0, Event: EventAdd, Device: "ghost", KCV: "00000000", Actor: "x"}}); err != nil {
		t.Fatal(err)
	}
	l.close()
	rep, err := e.reg.VerifyAudit(ctx)
	if err != nil || rep.Uncommitted != 1 || rep.Entries != 8 {
		t.Fatalf("uncommitted: %v %+v", err, rep)
	}
	// And half a line of a next append.
	f, err := os.OpenFile(ap, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(`{"seq":9,"time":"2025-`)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := VerifyAudit(ap); err == nil {
		t.Fatal("an incomplete line passed")
	}
	if _, err := e.reg.Add(ctx, "dev-6", Random()); err != nil {
		t.Fatal(err)
	}
	if w := e.warnings(); len(w) != 1 || !strings.Contains(w[0], "incomplete last line") {
		t.Fatalf("warnings %q", w)
	}
	rep, err = e.reg.VerifyAudit(ctx)
	if err != nil || rep.Uncommitted != 0 || rep.Entries != 9 {
		t.Fatalf("after the next write: %v %+v", err, rep)
	}
	if !bytes.HasPrefix(readFile(t, ap), full) {
		t.Fatal("the writer rewrote earlier lines")
	}
}

// TestAuditActor: the actor is the user plus CI job ids, cleaned so a
// hostile variable cannot forge structure; the master variable is never
// read (R4).
func TestAuditActor(t *testing.T) {
	var asked []string
	env := map[string]string{"CI_JOB_ID": "77", "GITHUB_RUN_ID": "12 34\n\"x", "BUILD_ID": ""}
	getenv := func(k string) string { asked = append(asked, k); return env[k] }
	got := actorName("ann smith", getenv)
	if got != `ann_smith GITHUB_RUN_ID=12_34_"x CI_JOB_ID=77` {
		t.Fatalf("actor %q", got)
	}
	for _, k := range asked {
		if strings.Contains(k, "MASTER") || strings.Contains(k, "SECRET") {
			t.Fatalf("asked for %s", k)
		}
	}
	if got := actorName("", nil); got != "unknown" {
		t.Fatalf("empty user: %q", got)
	}
	if got := actorName(strings.Repeat("u", 500), nil); len(got) != maxActorPart {
		t.Fatalf("long user not cut: %d", len(got))
	}
}

// TestCanonicalEscaping pins the string rule of the canonical form.
func TestCanonicalEscaping(t *testing.T) {
	ev := AuditEvent{Time: t0.Add(time.Nanosecond * 5), Event: EventExport, Actor: "a\"b\\c\x01\x1f\u00e9\u2028\xff"}
	got := string(appendCanonical(nil, 12, &ev, zeroHash))
	want := `{"seq":12,"time":"2025-03-14T15:09:26.000000005Z","event":"export","actor":"a\"b\\c\u0001\u001fé` + "\u2028\uFFFD" + `","prev":"` + zeroHash + `"}`
	if got != want {
		t.Fatalf("canonical\n%s\nwant\n%s", got, want)
	}
	line, _ := appendAuditLine(nil, 12, &ev, zeroHash)
	e, msg := parseAuditLine(line[:len(line)-1])
	if msg != "" || e.Seq != 12 || !e.Time.Equal(ev.Time) {
		t.Fatalf("parse: %s %+v", msg, e)
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
