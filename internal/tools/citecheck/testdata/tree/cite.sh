#!/bin/sh
# A script that cites R31 and design §2.2 (resolved).
# Resolved: nvs-format.md §1 and docs/nvs-format.md §1; not: nvs-format.md §2.
# Resolved: issue 5 and (issue 3 part 2); not: issue 6 part 1, or issue 7.
# Outside: ../shared/docs/design.md and shared/testdata/nvs/manifest.json.
