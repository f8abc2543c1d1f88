#!/usr/bin/env python3
"""Drive Espressif's nvs_partition_gen.py the way mfg_gen.py does (issue 7).

The comparison of scripts/bench-batch.sh (design §8): for every device,
write its CSV (namespace, device_id, psk) to OUTDIR/csv/, then generate
OUTDIR/bin/<id>.bin from it, one device after the other, either

  in-process   (default) by calling the generator's generate(args) with one
               argparse namespace reused across devices, as esp-idf's
               tools/mass_mfg/mfg_gen.py does (create_intermediate_csv), or
  per process  (--per-process) by running one `python3 nvs_partition_gen.py
               generate CSV bin/<id>.bin SIZE --outdir OUTDIR` per device.

The generator is NOT part of this repository: give the path of a local copy
of nvs_partition_gen.py with --generator or NVS_PARTITION_GEN (see
docs/factory.md). Its plain `generate` needs only the standard library and,
at import time, the `cryptography` package.

Ids and keys are the batch's: PREFIX followed by START ... START+COUNT-1,
zero-padded to the width of the largest, and psk = HMAC-SHA256(master,
id) with the master secret from USMP_MASTER_SECRET (design §2). They are
computed before the clock starts, as mfg_gen reads them from a values file.
The generator's own progress lines go to /dev/null (mfg_gen prints them),
which only helps the reference.

Prints one JSON object: {"mode", "devices", "seconds", "cpu_seconds",
"per_device_us"}, where seconds is the wall-clock time of the per-device loop
alone (no interpreter start-up, no import) and cpu_seconds this process's CPU
time in that loop (without the child processes of --per-process).
"""

import argparse
import csv
import hashlib
import hmac
import importlib.util
import json
import os
import subprocess
import sys
import time


def load_generator(path):
    spec = importlib.util.spec_from_file_location('nvs_partition_gen', path)
    if spec is None or spec.loader is None:
        sys.exit('ref_driver: cannot load %s' % path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def devices(prefix, start, count, master):
    width = len(str(start + count - 1))
    out = []
    for i in range(start, start + count):
        dev = '%s%0*d' % (prefix, width, i)
        out.append((dev, hmac.new(master, dev.encode(), hashlib.sha256).hexdigest()))
    return out


def write_csv(path, namespace, id_key, psk_key, dev, psk):
    # mfg_gen.add_data_to_file: a csv.writer, the header, the namespace row
    # with an empty value, then one row per key.
    with open(path, 'w', newline='') as f:
        w = csv.writer(f, delimiter=',')
        w.writerow(['key', 'type', 'encoding', 'value'])
        w.writerow([namespace, 'namespace', '', ''])
        w.writerow([id_key, 'data', 'string', dev])
        w.writerow([psk_key, 'data', 'hex2bin', psk])


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--generator', default=os.environ.get('NVS_PARTITION_GEN'),
                   help='path of nvs_partition_gen.py (default: $NVS_PARTITION_GEN)')
    p.add_argument('--outdir', required=True, help='output directory (made; should be on tmpfs)')
    p.add_argument('--count', type=int, required=True)
    p.add_argument('--prefix', default='fac-')
    p.add_argument('--start', type=int, default=1)
    p.add_argument('--size', default='0x6000')
    p.add_argument('--namespace', default='usmp')
    p.add_argument('--id-key', default='device_id')
    p.add_argument('--psk-key', default='psk')
    p.add_argument('--per-process', action='store_true',
                   help='one generator process per device instead of in-process calls')
    a = p.parse_args()
    if not a.generator:
        sys.exit('ref_driver: give --generator or NVS_PARTITION_GEN (a local copy of nvs_partition_gen.py)')
    master = os.environ.get('USMP_MASTER_SECRET')
    if master is None:
        sys.exit('ref_driver: USMP_MASTER_SECRET is not set')
    gen_path = os.path.abspath(a.generator)
    gen = None if a.per_process else load_generator(gen_path)

    devs = devices(a.prefix, a.start, a.count, master.encode())
    outdir = os.path.abspath(a.outdir)
    # mfg_gen.create_dir('csv', outdir) and ('bin', outdir), once.
    csv_dir = os.path.join(outdir, 'csv', '')
    bin_dir = os.path.join(outdir, 'bin', '')
    os.makedirs(csv_dir, exist_ok=True)
    os.makedirs(bin_dir, exist_ok=True)
    os.chdir(outdir)

    # mfg_gen passes its own argparse namespace to generate(); only these
    # attributes are read by generate().
    args = argparse.Namespace(input=None, output=None, size=a.size, version=2, outdir=outdir)
    devnull = open(os.devnull, 'w')
    stdout = sys.stdout
    sys.stdout = devnull
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        for dev, psk in devs:
            output_csv_file = csv_dir + dev + '.csv'
            if os.path.isfile(output_csv_file):
                raise SystemExit('Target csv file: %s already exists.`' % output_csv_file)
            write_csv(output_csv_file, a.namespace, a.id_key, a.psk_key, dev, psk)
            print('\nCreated CSV file: ===>', output_csv_file)
            bin_filename = dev + '.bin'
            if os.path.isfile(bin_dir + bin_filename):
                raise SystemExit('Target binary file: %s already exists.`' % (bin_dir + bin_filename))
            if a.per_process:
                subprocess.run([sys.executable, gen_path, 'generate', output_csv_file,
                                os.path.join('bin', bin_filename), a.size, '--outdir', outdir],
                               stdout=subprocess.DEVNULL, check=True)
            else:
                args.input = output_csv_file
                args.output = os.path.join('bin', bin_filename)
                gen.generate(args)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        sys.stdout = stdout
        devnull.close()
    mode = 'per-process' if a.per_process else 'in-process'
    print(json.dumps({'mode': mode, 'devices': a.count, 'seconds': round(secs, 6),
                      'cpu_seconds': round(cpu, 6), 'per_device_us': round(secs / a.count * 1e6, 2)}))


if __name__ == '__main__':
    main()
