"""`sgx directory import-settings`: the directory's settings from Ofsted provider lists.

The command belongs to the operator's `sgx directory` group, but reading a provider list is the adapters' job, so
it lives here and the `sgx` command registers it in that group: the exchange never imports the adapters.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from adapters.base import Problem
from adapters.ofsted_providers import ProviderListReader
from broker import directory as d
from broker.options import DIR_OPTION


@click.command("import-settings")
@DIR_OPTION
@click.option("--regulator", "regulators", multiple=True, default=["ofsted"], show_default=True)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_settings(root: Path, regulators: tuple[str, ...], files: tuple[Path, ...]) -> None:
    """Add or update settings from Ofsted provider lists (XLSX): URN, name, type, host LA from the local
    authority column, host ICB from the host LA, postcode. Closed settings are left out. Sign afterwards.

    Exit codes: 0 all rows imported, 1 some rows had problems (listed; the others were imported).
    """
    directory_ = d.load_draft(root)
    reader = ProviderListReader()
    added = updated = 0
    problems = []
    for file in files:
        for item in reader.read(file):
            if isinstance(item, Problem):
                problems.append(item)
                continue
            v = item.values
            host_la, host_icb = v["HOST_LA"], directory_.default_icb(v["HOST_LA"])
            la = directory_.participants.get(host_la)
            if la and la.codes.get("dfe_la") in d.las_in_several_icbs():
                problems.append(f"{file.name}, row {item.row}: check-host-icb: {host_la} spans more than one ICB; "
                                f"{host_icb} was set from the LA table: confirm it for the setting's address with "
                                f"'sgx directory add-setting --urn {v['URN']} ... --host-icb ICB'")
            existing = directory_.setting(v["URN"])
            setting = d.Setting(v["URN"], v["NAME"], v["TYPE"], host_la, host_icb,
                                list(regulators), existing.provider if existing else None,
                                existing.police if existing else None, v["POSTCODE"])
            try:
                directory_.add_setting(setting)
            except d.DirectoryError as exc:
                problems.append(f"{file.name}, row {item.row}: {exc}")
                continue
            updated, added = (updated + 1, added) if existing else (updated, added + 1)
    d.save_draft(root, directory_)
    for problem in problems:
        click.echo(str(problem), err=True)
    click.echo(f"settings: {added} added, {updated} updated, {len(problems)} rows with problems; "
               "run 'sgx directory sign' to publish")
    sys.exit(1 if problems else 0)
