package deploy

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
)

// grafanaUnits are units of Grafana's value formats (grafana-data's
// valueFormats/categories.ts) this dashboard may use.
var grafanaUnits = map[string]bool{
	"none": true, "short": true, "percent": true, "percentunit": true, "s": true, "ms": true, "µs": true, "ns": true,
	"dtdurations": true, "bytes": true, "decbytes": true, "reqps": true, "ops": true, "rps": true, "wps": true,
	"dateTimeAsIso": true, "dateTimeFromNow": true, "locale": true, "string": true,
}

// TestDashboardLint checks the rules of Grafana's dashboard-linter
// (github.com/grafana/dashboard-linter, which the Go module proxy here does
// not serve) that the shipped dashboard is meant to follow:
// template-uneditable-rule, template-job-rule and template-instance-rule
// (multi-select, allValue ".+", the templated datasource, a Prometheus
// query), and panel-units-rule (every stat, graph, table, timeseries and
// gauge panel has a valid unit).
func TestDashboardLint(t *testing.T) {
	var dash struct {
		Editable   *bool `json:"editable"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Label      string `json:"label"`
				Type       string `json:"type"`
				Multi      bool   `json:"multi"`
				IncludeAll bool   `json:"includeAll"`
				AllValue   string `json:"allValue"`
				Datasource struct {
					Type string `json:"type"`
					UID  string `json:"uid"`
				} `json:"datasource"`
			} `json:"list"`
		} `json:"templating"`
		Panels []lintPanel `json:"panels"`
	}
	if err := json.Unmarshal(readRepo(t, "deploy/grafana-dashboard.json"), &dash); err != nil {
		t.Fatal(err)
	}
	if dash.Editable == nil || *dash.Editable {
		t.Error("template-uneditable-rule: the dashboard must have \"editable\": false (it is provisioned from this file)")
	}
	found := map[string]bool{}
	for _, v := range dash.Templating.List {
		if v.Name != "job" && v.Name != "instance" {
			continue
		}
		found[v.Name] = true
		if v.Label != v.Name || v.Type != "query" || !v.Multi || v.AllValue != ".+" ||
			v.Datasource.Type != "prometheus" || v.Datasource.UID != "${datasource}" {
			t.Errorf("template-%s-rule: variable %s: label %q, type %q, multi %v, allValue %q, datasource %+v; want label %[1]s, query, multi, allValue \".+\", ${datasource}",
				v.Name, v.Name, v.Label, v.Type, v.Multi, v.AllValue, v.Datasource)
		}
	}
	if !found["job"] || !found["instance"] {
		t.Errorf("template-job-rule / template-instance-rule: variables found %v, want job and instance", slices.Sorted(maps.Keys(found)))
	}
	var walk func(ps []lintPanel)
	walk = func(ps []lintPanel) {
		for _, p := range ps {
			walk(p.Panels)
			switch p.Type {
			case "stat", "singlestat", "graph", "table", "timeseries", "gauge":
			default:
				continue
			}
			if len(p.FieldConfig.Defaults.Mappings) > 0 {
				continue // the rule's own exception
			}
			if u := p.FieldConfig.Defaults.Unit; !grafanaUnits[u] {
				t.Errorf("panel-units-rule: panel %q has unit %q", p.Title, u)
			}
		}
	}
	walk(dash.Panels)
}

type lintPanel struct {
	Type        string `json:"type"`
	Title       string `json:"title"`
	FieldConfig struct {
		Defaults struct {
			Unit     string            `json:"unit"`
			Mappings []json.RawMessage `json:"mappings"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Panels []lintPanel `json:"panels"`
}
