"""BuildAndRegister's data job on Spark, for data sets above spark_above_mib: the import's checks, split and
preprocessing spread over the instances of a SageMaker Processing job in the Spark image, a file of the data set
(or a part of a large one: import_dataset.parts) at a time, writing what processing/import_dataset.py
--processed-dir writes, byte for byte.

A PySpark application for smspark-submit. It runs the one-instance job's own code (import_dataset.py and
features.py, the job's two code inputs, shipped to every executor under their names), spread out as follows:
1. each file is scanned on its own (import_dataset.Scan) side by side, and the driver folds the scans in the
   files' order (Scan.absorb): the same checks, the same messages, the same column kinds and label counts;
2. the driver fixes each file's share of each split (split_counts); each file is split on its own (split_file),
   its training rows learnt (Training) and parsed for fitting (features.parsed), side by side;
3. the driver writes the raw splits in the files' order, folds the training statistics and feeds the fitter in
   that order (so the medians, means and deviations are the one-instance job's to the bit), writes dataset.json
   and fits the preprocessing;
4. each file's rows of each split are transformed side by side (features.chunk_texts), and the driver writes the
   processed splits, the parameters and the served preprocessor.
Spark spreads the work by file and by part of a large file (about 64 MiB each, cut at line breaks, unless the file
holds a quote character: a quoted value may hold a line break, so such a file is one unit). The driver holds one
unit's output at a time in memory and writes every output on its own disk (the primary instance's,
which SageMaker uploads; the others write nothing).

The Spark image replaces the message file of an application that fails with its own line (smspark's job.py), so a
refusal could not name the bad value that way: a data set the job refuses ends the application with exit code 0
and `InvalidDataset: <message>` as the message file, which the workflow reads as it reads the one-instance job's
failure. Anything else that goes wrong fails the job.
"""
from __future__ import annotations

import argparse
import errno
import io
import shutil
import sys
import tempfile
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import SparkSession

MODULES = ("import_dataset", "features")  # shipped to the executors under these names


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0],
                                     epilog="Every other argument is processing/import_dataset.py's.")
    parser.add_argument("--import-script", type=Path, required=True, help="processing/import_dataset.py, as shipped")
    parser.add_argument("--features-script", type=Path, required=True, help="processing/features.py, as shipped")
    own, rest = parser.parse_known_args(argv)
    scripts = {"import_dataset": own.import_script, "features": own.features_script}
    spark = SparkSession.builder.appName("build-and-register-data-job").getOrCreate()
    context = spark.sparkContext
    with tempfile.TemporaryDirectory(prefix="modules-") as folder:
        for name, path in scripts.items():  # each under its module's name; the driver imports them from there too
            shutil.copyfile(path, Path(folder, f"{name}.py"))
            context.addPyFile(str(Path(folder, f"{name}.py")))
        import features
        import import_dataset as importer

        args = importer.arguments([*rest, "--features-script", str(own.features_script)])
        try:
            return run(context, args)
        except importer.InvalidDataset as error:
            return _refuse(args, f"InvalidDataset: {error}")
        except features.BadInput as error:
            # The import checked the data: the kit's fault, named as the one-instance job names it.
            return _refuse(args, f"PreprocessingFailed: {error}")
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            return _refuse(args, importer.volume_full(args, error))
        finally:
            spark.stop()


def _refuse(args, message: str) -> int:
    """The refusal as the message file, and a clean exit so that the image keeps it (see the module's doc)."""
    import import_dataset as importer

    importer.refuse(args, message)
    return 0


def run(context, args) -> int:
    import features
    import import_dataset as importer

    settings = importer.Settings(args.label_column, args.task, args.categorical_columns, args.drop_columns,
                                 args.bias_columns)
    files = importer.parts(importer.sources(args.input_dir, args.source), args.part_bytes)  # units of work, in order
    # The first file's header against the settings, as the one-instance job checks it before any row.
    first = importer.Columns(settings, files[0], importer.read_header(files[0], None)[0])
    # 1. Scans, side by side; folded in the files' order.
    units = context.parallelize(list(enumerate(files)), len(files))
    scans = units.map(lambda unit: _attempt(importer.Scan, settings, [unit[1]], first, unit[0] > 0)).collect()
    scan = _result(scans[0])
    for done in scans[1:]:
        scan.absorb(_result(done))
    classes, numeric = scan.classes(), scan.numeric()
    columns, seed = scan.columns, args.seed
    counts = importer.split_counts(importer.groups_of(scan, classes), seed)
    kinds = importer.kinds(columns, numeric)

    # 2. Each file split, its training rows learnt and parsed for fitting, side by side; kept on the executors' disks.
    def split(unit):
        number, source = unit
        texts = [io.StringIO() for _ in range(4)]
        training, parsed = importer.Training(columns, numeric, number > 0), []
        importer.split_file(source, columns, classes, counts[number], seed, number,
                            tuple(texts), training,
                            lambda by_column, where: parsed.append(features.parsed(kinds, by_column, where)))
        return [text.getvalue() for text in texts], training, parsed
    splits = units.map(lambda unit: _attempt(split, unit)).persist(StorageLevel.DISK_ONLY)
    splits.count()  # every file at once, before the driver takes them one by one

    # 3. The raw splits written and the preprocessing fitted, in the files' order.
    raw = args.output_dir / "raw"
    args.processed_dir.mkdir(parents=True, exist_ok=True)
    training = None
    with tempfile.TemporaryDirectory(prefix="fit-", dir=args.processed_dir) as spill:
        fitter = features.Fitter(kinds, Path(spill))
        with importer.raw_splits(args.output_dir, columns.names) as outs:
            for done in splits.toLocalIterator():
                texts, learnt, parsed = _result(done)
                for out, text in zip(outs, texts):
                    out.write(text)
                training = importer.learn(training, learnt, parsed, fitter)
            constant = training.constant(scan)
        rows = importer.split_rows(counts)
        description = importer.describe(args.output_dir, settings, args.source, columns, numeric, classes, rows,
                                         constant)
        for notice in description["notices"]:
            print(f"notice: {notice}", file=sys.stderr)
        parameters = fitter.parameters(raw / "train.csv", description, workers=1)  # the driver is not forked

    # 4. Each file's rows of each split transformed side by side, written in the files' order.
    parts = min(args.train_parts, rows["train"])
    starts = [sum(per_file[group][0] for per_file in counts[:number] for group in range(len(per_file)))
              for number in range(len(files))]

    def transform(number_and_split):
        """A unit's rows of each split, transformed CHUNK_ROWS at a time (as the one-instance job does)."""
        number, (texts, _, _) = number_and_split
        out = []
        for split, text in zip(features.SPLITS, texts):
            count = parts if split == "train" else 1
            first = starts[number] if split == "train" else 0
            pieces = [[] for _ in range(count)]
            width = len(columns.names) - (split == "test")  # a test row has no label
            for lines, rows in features.csv_chunks(io.StringIO(text), features.CHUNK_ROWS):
                by_column = features.columns_of(rows, width)
                given = None if split == "test" else list(by_column.pop(columns.label))
                where = features.Lines(raw / f"{split}.csv", list(lines))
                for piece, texts_of_part in zip(pieces, features.chunk_texts(parameters, description, given,
                                                                             by_column, where, first, count)):
                    piece.append(texts_of_part)
                first += len(rows)
            out.append(["".join(piece) for piece in pieces])
        return out
    transformed = splits.zipWithIndex().map(lambda pair: _attempt(transform, (pair[1], _result(pair[0])))) \
        .persist(StorageLevel.DISK_ONLY)
    transformed.count()
    processed = args.processed_dir
    handles = {split: [open(path, "w", encoding="utf-8", newline="")
                       for path in features.split_targets(processed, split, parts if split == "train" else 1)]
               for split in features.SPLITS}
    try:
        for done in transformed.toLocalIterator():
            for split, texts in zip(features.SPLITS, _result(done)):
                for handle, text in zip(handles[split], texts):
                    handle.write(text)
    finally:
        for opened in handles.values():
            for handle in opened:
                handle.close()
    features.finish(parameters, rows, processed)
    splits.unpersist()
    transformed.unpersist()
    return importer.finish(args, description)


def _attempt(work, *arguments):
    """A task's result, or the refusal it met (raised again on the driver, in the files' order)."""
    import import_dataset as importer

    try:
        return "done", work(*arguments)
    except importer.InvalidDataset as error:
        return "refused", str(error)


def _result(done):
    import import_dataset as importer

    status, value = done
    if status == "refused":
        raise importer.InvalidDataset(value)
    return value


if __name__ == "__main__":
    sys.exit(main())
