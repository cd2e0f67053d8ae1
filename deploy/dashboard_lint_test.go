package deploy

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
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

// TestComposeHostPortsAndGrafana: the stack's host ports are not the ones
// `authserver dev` takes (so the README's quick start and the stack run side
// by side), and Grafana is provisioned with the shipped dashboard and a data
// source pointing at the compose Prometheus.
func TestComposeHostPortsAndGrafana(t *testing.T) {
	var c composeFile
	if err := yaml.Unmarshal(readRepo(t, "docker-compose.yml"), &c); err != nil {
		t.Fatal(err)
	}
	devPorts := map[string]bool{"8443": true, "9090": true}
	for name, svc := range c.Services {
		for _, p := range svc.Ports {
			parts := strings.Split(p, ":")
			if len(parts) < 2 {
				t.Errorf("docker-compose.yml: %s publishes %q without a host port", name, p)
				continue
			}
			if host := parts[len(parts)-2]; devPorts[host] {
				t.Errorf("docker-compose.yml: %s publishes host port %s, which `authserver dev` uses", name, host)
			}
		}
	}
	g, ok := c.Services["grafana"]
	if !ok {
		t.Fatal("docker-compose.yml: no grafana service")
	}
	dashDir := ""
	var prov struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if src := g.hostFile("/etc/grafana/provisioning/dashboards/authserver.yml"); src != "./deploy/grafana/provisioning/dashboards/authserver.yml" {
		t.Fatalf("grafana does not mount deploy/grafana/provisioning (mounts %v)", g.mounts())
	}
	if err := yaml.Unmarshal(readRepo(t, "deploy/grafana/provisioning/dashboards/authserver.yml"), &prov); err != nil || len(prov.Providers) != 1 {
		t.Fatalf("dashboard provider: %v %+v", err, prov)
	}
	dashDir = prov.Providers[0].Options.Path
	found := false
	for target, src := range g.mounts() {
		if src == "./deploy/grafana-dashboard.json" && strings.HasPrefix(target, dashDir+"/") {
			found = true
		}
	}
	if !found {
		t.Errorf("grafana does not mount deploy/grafana-dashboard.json under the provider's path %s (mounts %v)", dashDir, g.mounts())
	}
	var ds struct {
		Datasources []struct {
			Type, URL string
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(readRepo(t, "deploy/grafana/provisioning/datasources/prometheus.yml"), &ds); err != nil || len(ds.Datasources) != 1 ||
		ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("data source: %v %+v, want the compose prometheus", err, ds)
	}
}

// TestREADMEDockerDev: the README's `docker run … dev` line makes the
// commands dev prints usable on the host: the data directory dev writes the
// certificate and secret to (./data under the image's WORKDIR) is mounted
// from the host's ./data, as the user who runs curl, and both listeners are
// published on the host ports the printed URLs name.
func TestREADMEDockerDev(t *testing.T) {
	readme := string(readRepo(t, "README.md"))
	var line string
	for _, l := range strings.Split(strings.ReplaceAll(readme, "\\\n", " "), "\n") {
		if strings.HasPrefix(l, "docker run ") && strings.Contains(l, " authserver dev ") {
			line = strings.Join(strings.Fields(l), " ")
		}
	}
	if line == "" {
		t.Fatal("README.md has no `docker run … authserver dev` line")
	}
	workdir := ""
	for _, l := range strings.Split(string(readRepo(t, "Dockerfile")), "\n") {
		if w, ok := strings.CutPrefix(l, "WORKDIR "); ok {
			workdir = strings.TrimSpace(w) // the last one is the runtime stage's
		}
	}
	for _, want := range []string{
		`-v "$PWD/data:` + workdir + `/data"`,
		`--user "$(id -u):$(id -g)"`,
		"-p 127.0.0.1:8443:8443", "--listen :8443",
		"-p 127.0.0.1:9090:9090", "--admin-listen :9090",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("README's docker dev line lacks %q: %s", want, line)
		}
	}
}
