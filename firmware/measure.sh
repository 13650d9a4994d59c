#!/usr/bin/env bash
# Firmware figures for BENCHMARKS.md: flash and RAM of each target, the stack
# high-water mark, executed instructions per inference (QEMU + the insncount
# plugin of ../../shared/tools/insncount), and the size of the inference code
# alone on thumbv6m. Needs qemu-system-arm, gcc, and `rustup component add
# llvm-tools`. Usage: firmware/measure.sh [path/to/insncount.c]
set -euo pipefail
cd "$(dirname "$0")"
plugin_src=${1:-../../shared/tools/insncount/insncount.c}
bin=$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/host: //p')/bin
[ -x "$bin/llvm-size" ] || rustup component add llvm-tools >/dev/null
work=$(mktemp -d)
gcc -O2 -shared -fPIC -fvisibility=hidden -o "$work/libinsncount.so" "$plugin_src"
macs=$(sed -n 's/.*MACS: usize = \([0-9]*\);/\1/p' data/meta.rs)
echo "model: $(stat -c %s data/model.bin) byte blob, $macs MACs per inference"
for spec in thumbv7em-none-eabihf:cortex-m4:mps2-an386 thumbv6m-none-eabi:cortex-m0:microbit; do
  IFS=: read -r triple cpu machine <<< "$spec"
  cargo build -q --release --target "$triple"
  elf=target/$triple/release/ember-firmware
  addr() { "$bin/llvm-nm" "$elf" | awk -v s="$1" '$3==s {print $1}'; }
  out=$(INSNCOUNT_OUT="$work/count" timeout 300 qemu-system-arm -cpu "$cpu" -machine "$machine" -nographic \
        -semihosting-config enable=on,target=native \
        -plugin "$work/libinsncount.so,start=0x$(addr bench_start),stop=0x$(addr bench_stop)" -kernel "$elf" 2>&1)
  echo "$out" | grep -q "RESULT: PASS" || { echo "$out"; exit 1; }
  insns=$(sed -E 's/.*\[([0-9]+).*/\1/' "$work/count")
  sec() { "$bin/llvm-size" -A "$elf" | awk -v s="$1" '$1==s {print $2}'; }
  text=$(sec .text); rodata=$(sec .rodata); data=$(sec .data); bss=$(sec .bss)
  stack=$(echo "$out" | sed -n 's/.*stack high-water \([0-9]*\) bytes.*/\1/p')
  echo "$triple ($machine): flash $((text + rodata)) B (.text $text + .rodata $rodata)," \
       "RAM $((data + bss + stack)) B (.data $data + .bss $bss + stack $stack)," \
       "$insns instructions per inference, $(awk -v m="$macs" -v i="$insns" 'BEGIN {printf "%.3f", m / i}') MAC/instruction"
done
# On-device training (src/bin/finetune.rs): instructions per training step,
# the mean over the run's steps (one bench window each).
for spec in thumbv7em-none-eabihf:cortex-m4:mps2-an386 thumbv6m-none-eabi:cortex-m0:microbit; do
  IFS=: read -r triple cpu machine <<< "$spec"
  cargo build -q --release --target "$triple" --bin finetune
  elf=target/$triple/release/finetune
  addr() { "$bin/llvm-nm" "$elf" | awk -v s="$1" '$3==s {print $1}'; }
  out=$(INSNCOUNT_OUT="$work/count" timeout 300 qemu-system-arm -cpu "$cpu" -machine "$machine" -nographic \
        -semihosting-config enable=on,target=native \
        -plugin "$work/libinsncount.so,start=0x$(addr bench_start),stop=0x$(addr bench_stop)" -kernel "$elf" 2>&1)
  echo "$out" | grep -q "RESULT: PASS" || { echo "$out"; exit 1; }
  per_step=$(sed -E 's/.*\[([0-9,]+)\].*/\1/' "$work/count" | tr ',' '\n' | awk '{s += $1; n++} END {printf "%d", s / n}')
  stack=$(echo "$out" | sed -n 's/.*stack high-water \([0-9]*\) B.*/\1/p')
  macs=$(echo "$out" | sed -n 's/.*about \([0-9]*\) multiply-adds.*/\1/p')
  echo "$triple ($machine) fine-tune: $per_step instructions per training step ($macs multiply-adds)," \
       "stack high-water $stack B; $(echo "$out" | grep -o 'accuracy [0-9.]*% after training')"
done
for f in probe-empty probe-infer; do
  cargo build -q --release --target thumbv6m-none-eabi --features "$f" --target-dir "target/$f"
done
empty=$("$bin/llvm-size" -A target/probe-empty/thumbv6m-none-eabi/release/ember-firmware | awk '$1==".text" {print $2}')
infer=$("$bin/llvm-size" -A target/probe-infer/thumbv6m-none-eabi/release/ember-firmware | awk '$1==".text" {print $2}')
echo "thumbv6m inference code (parse + integer inference, no blob, no printing): $((infer - empty)) B of .text"
rm -rf "$work"
