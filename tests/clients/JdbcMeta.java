import java.sql.*;

/**
 * Makes a small schema (serial and bigserial keys, varchar(n), numeric(10,2), timestamptz,
 * a foreign key with ON DELETE CASCADE, a UNIQUE, an index) and prints what pgjdbc's
 * DatabaseMetaData (tables, columns, keys, foreign keys, indexes) and ResultSetMetaData say
 * of it, one line each: run against PostgreSQL and against switchyard, the two must match.
 */
public class JdbcMeta {
    interface Call { ResultSet get() throws SQLException; }

    static void rows(String title, Call call, String... cols) {
        try { rowsOf(title, call.get(), cols); }
        catch (SQLException e) { System.out.println(title + " | error " + e.getSQLState() + " " + e.getMessage().replace("\n", " ")); }
    }

    static void rowsOf(String title, ResultSet rs, String... cols) throws SQLException {
        while (rs.next()) {
            StringBuilder b = new StringBuilder(title);
            for (String c : cols) {
                b.append(" | ").append(c).append('=').append(rs.getString(c));
            }
            System.out.println(b);
        }
    }

    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0], args[1], args[2])) {
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE author (id serial PRIMARY KEY, name varchar(80) NOT NULL UNIQUE, "
                        + "active boolean NOT NULL DEFAULT true, joined timestamptz NOT NULL DEFAULT now())");
                s.execute("CREATE TABLE book (id bigserial PRIMARY KEY, author_id integer NOT NULL "
                        + "REFERENCES author (id) ON DELETE CASCADE, title text, price numeric(10,2), "
                        + "rating double precision, published date)");
                s.execute("CREATE INDEX book_title ON book (title)");
            }
            DatabaseMetaData md = c.getMetaData();
            rows("table", () -> md.getTables(null, "public", "%", new String[] {"TABLE"}),
                    "TABLE_NAME", "TABLE_TYPE");
            for (String t : new String[] {"author", "book"}) {
                rows("column " + t, () -> md.getColumns(null, "public", t, "%"), "COLUMN_NAME", "DATA_TYPE",
                        "TYPE_NAME", "COLUMN_SIZE", "DECIMAL_DIGITS", "NULLABLE", "COLUMN_DEF",
                        "ORDINAL_POSITION", "IS_AUTOINCREMENT");
                rows("pk " + t, () -> md.getPrimaryKeys(null, "public", t), "COLUMN_NAME", "KEY_SEQ", "PK_NAME");
                rows("fk " + t, () -> md.getImportedKeys(null, "public", t), "PKTABLE_NAME", "PKCOLUMN_NAME",
                        "FKCOLUMN_NAME", "KEY_SEQ", "UPDATE_RULE", "DELETE_RULE", "FK_NAME", "PK_NAME");
                rows("index " + t, () -> md.getIndexInfo(null, "public", t, false, false), "INDEX_NAME",
                        "NON_UNIQUE", "ORDINAL_POSITION", "COLUMN_NAME", "ASC_OR_DESC");
            }
            try (PreparedStatement p = c.prepareStatement(
                    "SELECT b.id, a.name, b.price, b.rating, a.joined, a.active, b.published, "
                    + "count(*) OVER () AS n FROM book b JOIN author a ON a.id = b.author_id")) {
                ResultSetMetaData r = p.getMetaData();
                for (int i = 1; i <= r.getColumnCount(); i++) {
                    System.out.println("result " + r.getColumnLabel(i) + " | type=" + r.getColumnTypeName(i)
                            + " | sql=" + r.getColumnType(i) + " | precision=" + r.getPrecision(i)
                            + " | scale=" + r.getScale(i) + " | nullable=" + r.isNullable(i)
                            + " | table=" + r.getTableName(i) + " | auto=" + r.isAutoIncrement(i));
                }
            }
        }
    }
}
