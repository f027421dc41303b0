//! User profiles from the Users table. Time zone and last login are not in
//! the base (they never sync): they come from PostgreSQL.

use async_trait::async_trait;

use super::{first_link, text, AirtableStore, OrUpstream};
use crate::domain::{CompanyId, Role, UserId};
use crate::error::Result;
use crate::store::users::{UserProfile, UserStore};

#[async_trait]
impl UserStore for AirtableStore {
    async fn profile(&self, id: UserId) -> Result<Option<UserProfile>> {
        let Some(record) = self.by_pg_id("user", id.0).await? else {
            return Ok(None);
        };
        let f = |key| self.field("user", key);
        let fields = &record.fields;
        let company = match first_link(fields, f("company_id")) {
            Some(company) => self
                .uuids_of("company", std::slice::from_ref(&company))
                .await?
                .get(&company)
                .copied(),
            None => None,
        };
        let local: Option<(String, Option<chrono::DateTime<chrono::Utc>>)> =
            sqlx::query_as("SELECT time_zone, last_login_at FROM users_pg WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        let (time_zone, last_login_at) =
            local.unwrap_or_else(|| ("Europe/Amsterdam".to_owned(), None));
        Ok(Some(UserProfile {
            id,
            email: text(fields, f("email")),
            name: text(fields, f("name")),
            company_id: company.map(CompanyId),
            role: Role::from_stored(fields.single_select(f("role")).up()?.unwrap_or("user")),
            time_zone,
            bonus_points: fields.integer(f("bonus_points")).up()?.unwrap_or(0) as i32,
            badges: fields
                .multiple_selects(f("badges"))
                .up()?
                .into_iter()
                .map(str::to_owned)
                .collect(),
            level: fields.integer(f("level")).up()?.unwrap_or(1) as i32,
            last_login_at,
        }))
    }
}

impl AirtableStore {
    /// Finds a user by email in the Users table and brings the record into
    /// PostgreSQL (marked as an inbound write, so it is not echoed back),
    /// keeping its `pg_id` as the row's id, or giving the record one. The
    /// row has no password: the user sets one with an invitation.
    pub(crate) async fn import_user(
        &self,
        email: &crate::domain::Email,
    ) -> Result<Option<crate::store::auth::Credentials>> {
        let email_field = self.formula_field("user", "email")?;
        let same_email = airsync_airtable::Formula::from_trusted(format!(
            "LOWER({email_field}) = {}",
            airsync_airtable::formula::text(&email.normalized())
        ));
        let Some(record) = self
            .list("user", Some(same_email))
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let f = |key| self.field("user", key);
        let fields = &record.fields;
        let id = super::pg_id(fields, f("id")).unwrap_or_else(uuid::Uuid::new_v4);
        let company = match first_link(fields, f("company_id")) {
            Some(company) => self
                .uuids_of("company", std::slice::from_ref(&company))
                .await?
                .get(&company)
                .copied(),
            None => None,
        };
        // The record's Role is not taken: admin rights live in PostgreSQL
        // alone, or anyone who can edit the base could make an admin.
        let role = Role::User;
        let mut tx = self.pool().begin().await?;
        sqlx::query("SET LOCAL airsync.origin = 'inbound'")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO users_pg (id, email, name, company_id, role, bonus_points, badges, level)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(email.as_str())
        .bind(text(fields, f("name")))
        .bind(company)
        .bind(role.as_str())
        .bind(fields.integer(f("bonus_points")).up()?.unwrap_or(0).max(0) as i32)
        .bind(
            fields
                .multiple_selects(f("badges"))
                .up()?
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        )
        .bind(fields.integer(f("level")).up()?.unwrap_or(1).max(1) as i32)
        .execute(&mut *tx)
        .await?;
        airsync_sync::id_map::record_mapping(&mut *tx, "user", id, &record.id)
            .await
            .map_err(crate::error::Error::internal)?;
        tx.commit().await?;
        if super::pg_id(fields, f("id")).is_none() {
            self.update(
                "user",
                &record.id,
                airsync_airtable::Fields::new().with(f("id"), id.to_string()),
            )
            .await?;
        }
        tracing::info!(user_id = %id, "user brought in from Airtable at login");
        crate::store::postgres::users::find_credentials_by_email(self.pool(), email).await
    }
}
