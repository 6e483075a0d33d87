"""The mysql source's row counter: rows per table read from a dump as it streams by, in the
layouts mariadb-dump and mysqldump write, however the stream is cut into chunks."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from backups.sources.mysql_script import RowCounter

# MariaDB 10.11's layout: one row per line after a line ending in VALUES. Values hold what
# looks like the dump's own syntax; a table without rows; a view; a trigger whose body holds
# an INSERT between DELIMITER lines.
MARIADB_DUMP = b"""/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
DROP TABLE IF EXISTS `empty`;
CREATE TABLE `empty` (
  `id` int(11) DEFAULT NULL
) ENGINE=InnoDB;
LOCK TABLES `empty` WRITE;
UNLOCK TABLES;
CREATE TABLE `odd ``name``),(` (
  `v` text
) ENGINE=InnoDB;
INSERT INTO `odd ``name``),(` VALUES
('a),(b'),
('it\\'s'),
('back\\\\slash\\\\'),
('line\\nbreak'),
('semi;\\n'),
('),(\\',(\\'\\'');
CREATE TABLE `t` (
  `id` int(11) NOT NULL
) ENGINE=InnoDB;
INSERT INTO `t` VALUES
(1),
(2);
INSERT INTO `t` VALUES
(3);
/*!50001 CREATE VIEW `v` AS SELECT
 NULL AS `id` */;
DELIMITER ;;
/*!50003 CREATE*/ /*!50003 TRIGGER audited AFTER INSERT ON t FOR EACH ROW
INSERT INTO `empty` VALUES (NEW.id) */;;
DELIMITER ;
-- Dump completed
"""
MARIADB_COUNTS = {"empty": 0, "odd `name`),(": 6, "t": 3}

# mysqldump's (and older MariaDB's) layout: a statement per line; INSERT IGNORE, REPLACE and
# a column list (--complete-insert) as options write them.
MYSQL_DUMP = b"""CREATE TABLE `a` (
  `id` int
);
INSERT INTO `a` VALUES (1,'x),(y'),(2,'it\\'s'),(3,'\\\\'),(4,'');
INSERT IGNORE INTO `a` VALUES (5,NULL);
CREATE TABLE `b` (
  `id` int
);
REPLACE INTO `b` (`id`, `note`) VALUES (1,'('),(2,')');
"""
MYSQL_COUNTS = {"a": 5, "b": 2}


def counted(chunks: list[bytes]) -> dict[str, int]:
    counter = RowCounter()
    for chunk in chunks:
        counter.feed(chunk)
    return counter.counts


def test_mariadb_layout_counts_rows_of_every_table():
    """Rows per table, tables without rows at 0, trigger bodies and views not counted."""
    assert counted([MARIADB_DUMP]) == MARIADB_COUNTS


def test_mysqldump_layout_counts_rows_of_every_table():
    """A statement per line: the rows are the tuples outside quoted strings."""
    assert counted([MYSQL_DUMP]) == MYSQL_COUNTS


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[start:end] for start, end in itertools.pairwise(points)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0), max_size=30))
def test_counts_do_not_depend_on_where_the_stream_is_cut(cuts):
    """The runner hands the dump over in chunks of any size: the counts stay the same."""
    assert counted(_cut(MARIADB_DUMP, cuts)) == MARIADB_COUNTS
    assert counted(_cut(MYSQL_DUMP, cuts)) == MYSQL_COUNTS
