"""Fail CI when the browser (e2e) tests did not run: a skipped browser test proves nothing."""

import sys
import xml.etree.ElementTree as ET

cases = [c for c in ET.parse(sys.argv[1]).iter("testcase") if ".e2e." in c.get("classname", "")]
ran = [c for c in cases if c.find("skipped") is None]
if not ran:
    sys.exit("CI: no end-to-end browser test ran (missing or skipped) - failing")
skipped = [c.get("name") for c in cases if c.find("skipped") is not None]
if skipped:
    sys.exit(f"CI: browser tests skipped under CI=true: {skipped}")
print(f"CI: {len(ran)} end-to-end browser test(s) ran")
