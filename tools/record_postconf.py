"""Record real postconf(1) runs as golden facts for mailsim's tests.

    python3 tools/record_postconf.py [CASES.py]     # default tools/postconf_cases.py

Each case runs /usr/sbin/postconf -c TMPDIR ARGV on a main.cf/master.cf
written to TMPDIR; outputs are normalized (TMPDIR -> /etc/postfix, the
"config_directory = ..." line that -c adds to -n output removed, process_id
value masked).
"""
import json, os, re, subprocess, sys, tempfile, socket
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MASTER = (REPO / "mailsim/conf/data/master.cf").read_text()
OUT = REPO / "tests/golden/postconf"

def chroot_n(text):
    out = []
    for line in text.splitlines(keepends=True):
        f = line.split()
        if f and not line[0].isspace() and not line.startswith("#") and len(f) >= 8:
            # rewrite via real postconf instead (see below)
            pass
        out.append(line)
    return "".join(out)

def run_case(case):
    with tempfile.TemporaryDirectory(prefix="pc") as d:
        d = os.path.realpath(d)
        master = case.get("master_cf", "@default")
        if master == "@default":
            mtext = DEFAULT_MASTER
        else:
            mtext = master
        if mtext is not None:
            Path(d, "master.cf").write_text(mtext)
        Path(d, "main.cf").write_text(case["main_cf"])
        for pre in case.get("before", []):
            subprocess.run(["postconf", "-c", d] + pre, capture_output=True, check=True)
        p = subprocess.run(["postconf", "-c", d] + case["argv"], capture_output=True, text=True,
                           env={"PATH": "/usr/sbin:/usr/bin:/bin", "LANG": "C"})
        def norm(s, is_stdout):
            s = s.replace(d, "/etc/postfix")
            flags = "".join(a[1:] for a in case["argv"] if re.fullmatch(r"-[a-zA-Z#]+", a))
            if is_stdout and "n" in flags and "M" not in flags and "F" not in flags and "P" not in flags:
                if "h" in flags:
                    s = s.replace("\n/etc/postfix\n", "\n", 1)
                elif "H" in flags:
                    s = s.replace("config_directory\n", "")
                else:
                    s = s.replace("config_directory = /etc/postfix\n", "")
            if is_stdout:
                s = re.sub(r"^process_id = \d+$", "process_id = <pid>", s, flags=re.M)
            return s
        res = dict(case)
        res["stdout"] = norm(p.stdout, True)
        res["stderr"] = norm(p.stderr, False)
        res["rc"] = p.returncode
        if case.get("show_files"):
            res["main_cf_after"] = Path(d, "main.cf").read_text()
            if mtext is not None and (mtext != DEFAULT_MASTER or any(a[:2] in ("-M", "-F", "-P") for a in case["argv"])):
                res["master_cf_after"] = Path(d, "master.cf").read_text()
        return res

def interfaces():
    """The machine's addr/prefix list, as Postfix sees it (host style + subnet style)."""
    with tempfile.TemporaryDirectory(prefix="pc") as d:
        Path(d, "master.cf").write_text(DEFAULT_MASTER)
        got = {}
        for style in ("host", "subnet"):
            Path(d, "main.cf").write_text(f"mynetworks_style = {style}\n")
            got[style] = subprocess.run(["postconf", "-c", d, "-h", "mynetworks"], capture_output=True,
                                        text=True).stdout.split()
    return " ".join(h.split("/")[0].strip("[]") + "/" + s.split("/")[1]
                    for h, s in zip(got["host"], got["subnet"]))


def main():
    cases_file = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).with_name("postconf_cases.py"))
    ns = {"__file__": cases_file}
    exec(Path(cases_file).read_text(), ns)
    for group, cases in ns["GROUPS"].items():
        out = {
            "postfix_version": subprocess.run(["postconf", "-dh", "mail_version"], capture_output=True, text=True).stdout.strip(),
            "recorded_with": "postconf -c TMPDIR ARGV (Debian postfix 3.7.11); TMPDIR/main.cf = main_cf, TMPDIR/master.cf = master_cf ('@default' = mailsim/conf/data/master.cf, null = no master.cf); 'before' commands ran first",
            "normalized": "TMPDIR replaced by /etc/postfix; the 'config_directory = TMPDIR' line that -c adds to -n output removed; process_id values shown as <pid>",
            "machine": {"hostname": socket.gethostname(), "interfaces": interfaces(),
                        "mynetworks": subprocess.run(["postconf", "-dh", "mynetworks"], capture_output=True, text=True).stdout.strip()},
            "cases": [run_case(c) for c in cases],
        }
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{group}.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
        print(group, len(out["cases"]))


if __name__ == "__main__":
    main()
