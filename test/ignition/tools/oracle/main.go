// Ignition's own verdicts, for Kindling's fixtures: reads {"units": [...], "urls": [...]} as JSON on stdin and
// writes, for each unit text, go-systemd's unit.Deserialize error ("" if none) and, for each URL, the error
// report of Ignition's Resource.Validate at spec 3.3.0 and 3.4.0 ("" if none). Built inside a Butane source
// snapshot, whose vendored modules hold these packages (see ../build-oracle.sh).
package main

import (
	"encoding/json"
	"os"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
	t33 "github.com/coreos/ignition/v2/config/v3_3/types"
	t34 "github.com/coreos/ignition/v2/config/v3_4/types"
	"github.com/coreos/vcontext/path"
)

type input struct {
	Units []string `json:"units"`
	URLs  []string `json:"urls"`
}

type output struct {
	Units []string    `json:"units"`
	URLs  [][2]string `json:"urls"`
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	out := output{Units: []string{}, URLs: [][2]string{}}
	for _, text := range in.Units {
		verdict := ""
		if _, err := unit.Deserialize(strings.NewReader(text)); err != nil {
			verdict = err.Error()
		}
		out.Units = append(out.Units, verdict)
	}
	for _, u := range in.URLs {
		u := u
		pair := [2]string{}
		if r := (t33.Resource{Source: &u}).Validate(path.New("json")); r.IsFatal() {
			pair[0] = strings.TrimSpace(r.String())
		}
		if r := (t34.Resource{Source: &u}).Validate(path.New("json")); r.IsFatal() {
			pair[1] = strings.TrimSpace(r.String())
		}
		out.URLs = append(out.URLs, pair)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}
