package cli

import (
	"errors"
	"testing"
)

// scriptedPrompter answers the prompts in order and records them.
type scriptedPrompter struct {
	answers []string
	asked   []string
}

func (p *scriptedPrompter) Available() bool { return true }

func (p *scriptedPrompter) Password(prompt string) ([]byte, error) {
	p.asked = append(p.asked, prompt)
	if len(p.answers) == 0 {
		return nil, errors.New("no more input")
	}
	a := p.answers[0]
	p.answers = p.answers[1:]
	return []byte(a), nil
}

// TestMasterPromptAsksTwiceWhenUnchecked is issue 14 item 13: with nothing
// to check it, the master is asked twice and two different entries are
// refused (exit 2); where the registry checks it, once.
func TestMasterPromptAsksTwiceWhenUnchecked(t *testing.T) {
	master := canaryMaster(t)
	tests := []struct {
		name      string
		checkable bool
		answers   []string
		wantAsked int
		wantErr   error
	}{
		{"unchecked, same twice", false, []string{master, master}, 2, nil},
		{"unchecked, differs", false, []string{master, master + "x"}, 2, errMasterRepeat},
		{"checked by the registry", true, []string{master}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _, _ := testFactory(t, "")
			p := &scriptedPrompter{answers: tt.answers}
			f.masterCheckable = func() bool { return tt.checkable }
			got, err := f.masterPrompt(p)()
			if !errors.Is(err, tt.wantErr) || len(p.asked) != tt.wantAsked {
				t.Fatalf("err %v, asked %q", err, p.asked)
			}
			if err == nil && string(got) != master {
				t.Fatal("wrong master returned")
			}
			if err != nil && exitCodeFor(err) != exitUsage {
				t.Fatalf("exit %d, want 2", exitCodeFor(err))
			}
		})
	}
}
