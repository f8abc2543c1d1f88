package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// rehash recomputes the hash of an edited line, as someone who knows the
// canonical form would.
func rehash(line []byte) []byte {
	canon := append(append([]byte(nil), line[:len(line)-1-hashSuffixLen]...), '}')
	sum := sha256.Sum256(canon)
	return append(append([]byte(nil), canon[:len(canon)-1]...), `,"hash":"`+hex.EncodeToString(sum[:])+`"}`...)
}

// TestAuditActor: the actor is the user plus CI job ids, cleaned so a
// hostile variable cannot forge structure; the master variable is never
// read.
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
	line, _ := auditLine(12, &ev, zeroHash)
	e, msg := parseAuditLine(line)
	if msg != "" || e.Seq != 12 || !e.Time.Equal(ev.Time) {
		t.Fatalf("parse: %s %+v", msg, e)
	}
}

// TestParseAuditLine: a line is accepted only in its exact canonical form
// with its hash; every other form is refused with what is wrong.
func TestParseAuditLine(t *testing.T) {
	dev := AuditEvent{Time: t0, Event: EventRotate, Device: "dev-1", KCV: "0badc0de", Epoch: 3, Source: SourceDerived, Actor: "ci"}
	good, _ := auditLine(7, &dev, strings.Repeat("ab", 32))
	old := dev
	old.Source = "" // an entry of an earlier version
	oldLine, _ := auditLine(7, &old, strings.Repeat("ab", 32))
	edit := func(from, to string) []byte { return bytes.Replace(good, []byte(from), []byte(to), 1) }
	for _, tt := range []struct {
		name string
		line []byte
		want string // "" accepted, else a part of the message
	}{
		{"good", good, ""},
		{"without source", oldLine, ""},
		{"edited", edit(`"epoch":3`, `"epoch":4`), "the hash does not match"},
		{"edited and rehashed, white space", rehash(edit(`"epoch":3`, `"epoch": 3`)), "not in canonical form"},
		{"rehashed, members moved", rehash(edit(`"event":"rotate","device":"dev-1"`, `"device":"dev-1","event":"rotate"`)), "not in canonical form"},
		{"rehashed, escaped slash", rehash(edit(`"actor":"ci"`, `"actor":"c\/i"`)), "not in canonical form"},
		{"duplicate member", rehash(edit(`"actor":"ci"`, `"actor":"ci","actor":"x"`)), "not in canonical form"},
		{"unknown member", rehash(edit(`"actor":"ci"`, `"actor":"ci","x":1`)), "known fields"},
		{"unknown event", rehash(edit(`"rotate"`, `"rotated"`)), "unknown event"},
		{"unknown source", rehash(edit(`"derived"`, `"guessed"`)), "unknown source"},
		{"device without kcv", rehash(edit(`"kcv":"0badc0de",`, ``)), "not given together"},
		{"bad id", rehash(edit(`"dev-1"`, `"dev 1"`)), "bad device id"},
		{"bad time", rehash(edit(`2025-03-14T15:09:26Z`, `2025-03-14 15:09:26`)), "bad time"},
		{"no hash", good[:len(good)-hashSuffixLen-1], "no hash at its end"},
		{"trailing data", append(append([]byte(nil), good...), ' '), "no hash at its end"},
		{"empty", nil, "no hash"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, msg := parseAuditLine(tt.line)
			switch {
			case tt.want == "" && msg != "":
				t.Fatalf("refused: %s", msg)
			case tt.want != "" && !strings.Contains(msg, tt.want):
				t.Fatalf("message %q, want %q", msg, tt.want)
			case tt.want == "" && (e.Device != "dev-1" || e.Epoch != 3):
				t.Fatalf("entry %+v", e)
			}
		})
	}
}

// TestChain: seq, prev and the end against the recorded head.
func TestChain(t *testing.T) {
	var lines [][]byte
	head := AuditHead{}
	for i := 1; i <= 4; i++ {
		ev := AuditEvent{Time: t0, Event: EventAdd, Device: "d" + strings.Repeat("x", i), KCV: "00000000", Actor: "a"}
		line, h := auditLine(uint64(i), &ev, head.prevHash())
		lines = append(lines, line)
		head = AuditHead{Seq: uint64(i), Hash: h}
	}
	run := func(ls [][]byte, recorded AuditHead) string {
		c := &chain{location: "log"}
		for _, l := range ls {
			if _, err := c.next(l); err != nil {
				return err.Error()
			}
		}
		if err := c.end(recorded); err != nil {
			return err.Error()
		}
		return ""
	}
	for _, tt := range []struct {
		name     string
		lines    [][]byte
		recorded AuditHead
		want     string
	}{
		{"intact", lines, head, ""},
		{"deleted", [][]byte{lines[0], lines[2], lines[3]}, head, "line 2: seq is 3, expected 2"},
		{"moved", [][]byte{lines[1], lines[0]}, head, "line 1: seq is 2, expected 1"},
		{"start cut", lines[1:], head, "line 1: seq is 2"},
		{"cut short", lines[:3], head, "line 3: the log ends at entry 3 but the registry records entry 4"},
		{"added", lines, AuditHead{Seq: 3, Hash: "x"}, "line 4: entries after the last one the registry records (3)"},
		{"rewritten", lines, AuditHead{Seq: 4, Hash: strings.Repeat("0", 64)}, "line 4: this entry is not the one the registry records"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.lines, tt.recorded); !strings.Contains(got, tt.want) || (tt.want == "") != (got == "") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseAuditHead(t *testing.T) {
	h, err := ParseAuditHead("--expect", "42:"+strings.Repeat("ab", 32))
	if err != nil || h.Seq != 42 || h.String() != "42:"+strings.Repeat("ab", 32) {
		t.Fatalf("%+v %v", h, err)
	}
	for _, bad := range []string{"", "42", "0:" + strings.Repeat("ab", 32), "x:" + strings.Repeat("ab", 32), "42:" + strings.Repeat("AB", 32), "42:abc", "-1:" + strings.Repeat("ab", 32)} {
		if _, err := ParseAuditHead("--expect", bad); err == nil || !isBadInput(err) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
