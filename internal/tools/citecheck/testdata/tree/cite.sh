#!/bin/sh
# A script that cites R31 and design §2.2 (resolved).
