package cli

// --json for the commands that write files and otherwise only say so on
// stderr (nvs generate, encrypt, decrypt, generate-key, set, erase; issue 14
// item 11): the same facts as the stderr lines — paths, sizes, KCVs, never
// key bytes — as one JSON object on stdout.

import (
	"github.com/spf13/cobra"
)

// fileReport is one file a command wrote.
type fileReport struct {
	Path          string `json:"path"`
	Kind          string `json:"kind"` // image, encrypted-image, nvs-keys, hmac-key
	Bytes         int    `json:"bytes"`
	FormatVersion int    `json:"format_version,omitempty"`
	KCV           string `json:"kcv,omitempty"`      // of the key file itself
	KeysKCV       string `json:"keys_kcv,omitempty"` // of the keys an image is encrypted with
	Edit          string `json:"edit,omitempty"`     // nvs set/erase: what changed (lengths and KCVs, never values)

	// text is the stderr line without --json.
	text string
}

// addReportJSONFlag adds --json to a command that reports files it wrote.
func addReportJSONFlag(cmd *cobra.Command, asJSON *bool) {
	cmd.Flags().BoolVar(asJSON, "json", false, "report the files written as JSON on stdout: {\"files\":[{\"path\",\"kind\",\"bytes\",...}]}")
}

// reportFiles says what was written: a line per file on stderr, or with
// asJSON one object {"files": [...]} on stdout.
func reportFiles(ios *IOStreams, asJSON bool, files ...fileReport) error {
	if asJSON {
		if files == nil {
			files = []fileReport{}
		}
		return printJSON(ios, struct {
			Files []fileReport `json:"files"`
		}{files})
	}
	for _, r := range files {
		ios.Infof("%s", r.text)
	}
	return nil
}
