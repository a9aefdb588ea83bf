using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace DataMarket.Gateway.Model;

public sealed class Account
{
    /// <summary><c>acct_</c> and 16 hex digits; the id every service knows the account by.</summary>
    public required string Id { get; set; }
    public required string Name { get; set; }
    public required string Role { get; set; }
    public DateTime CreatedAt { get; set; }
}

/// <summary>A named API key. Only a SHA-256 of its secret is kept; the key itself is shown once, when it is made.</summary>
public sealed class ApiKey
{
    /// <summary>The public part of the key (<c>dmk_ID_secret</c>), used to find the row.</summary>
    public required string Id { get; set; }
    public required string AccountId { get; set; }
    public required string Name { get; set; }
    public required string SecretHash { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? LastUsedAt { get; set; }
    public DateTime? RevokedAt { get; set; }
}

/// <summary>
/// An account's password for the web UI, hashed by ASP.NET Core Identity's <c>PasswordHasher</c> (PBKDF2 with a salt
/// per hash). A table of its own, so accounts made before passwords existed keep working and API-key-only accounts have none.
/// </summary>
public sealed class AccountPassword
{
    public required string AccountId { get; set; }
    public required string Hash { get; set; }
    public DateTime UpdatedAt { get; set; }
}

/// <summary>
/// An operator's authenticator-app secret (TOTP, RFC 6238). <see cref="EnabledAt"/> is null until the first code
/// proves the app holds it; <see cref="LastTimeStep"/> refuses a code that was already used.
/// </summary>
public sealed class AccountTotp
{
    public required string AccountId { get; set; }
    public required string Secret { get; set; }
    public DateTime? EnabledAt { get; set; }
    public long LastTimeStep { get; set; }
}

/// <summary>A one-time password-reset link an operator issued; only a SHA-256 of its token is kept.</summary>
public sealed class PasswordReset
{
    public required string TokenHash { get; set; }
    public required string AccountId { get; set; }
    public required string IssuedBy { get; set; }
    public DateTime ExpiresAt { get; set; }
    public DateTime? UsedAt { get; set; }
}

/// <summary>Who did what, when: every operator action and every change to accounts and keys.</summary>
public sealed class AuditEntry
{
    public long Id { get; set; }
    public DateTime At { get; set; }
    public required string ActorId { get; set; }
    public required string Action { get; set; }
    public required string Target { get; set; }
}

public sealed class GatewayDbContext(DbContextOptions<GatewayDbContext> options) : DbContext(options)
{
    public const string AccountPasswordTable = "account_passwords";
    public const string AccountTotpTable = "account_totp";
    public const string PasswordResetTable = "password_resets";

    public DbSet<Account> Accounts => Set<Account>();

    public DbSet<ApiKey> ApiKeys => Set<ApiKey>();

    public DbSet<AuditEntry> Audit => Set<AuditEntry>();

    public DbSet<AccountPassword> Passwords => Set<AccountPassword>();

    public DbSet<AccountTotp> Totp => Set<AccountTotp>();

    public DbSet<PasswordReset> PasswordResets => Set<PasswordReset>();

    /// <summary>SQLite reads DateTime back without a zone; every timestamp here is UTC.</summary>
    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        configurationBuilder.Properties<DateTime>().HaveConversion<UtcConverter>();
        configurationBuilder.Properties<DateTime?>().HaveConversion<UtcConverter>();
    }

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Account>(account =>
        {
            account.ToTable("accounts");
            account.HasKey(a => a.Id);
            account.Property(a => a.Id).HasMaxLength(40);
            account.Property(a => a.Name).HasMaxLength(100);
            account.Property(a => a.Role).HasMaxLength(20);
            account.HasIndex(a => a.Name).IsUnique();
        });
        modelBuilder.Entity<ApiKey>(key =>
        {
            key.ToTable("api_keys");
            key.HasKey(k => k.Id);
            key.Property(k => k.Id).HasMaxLength(40);
            key.Property(k => k.AccountId).HasMaxLength(40);
            key.Property(k => k.Name).HasMaxLength(100);
            key.Property(k => k.SecretHash).HasMaxLength(64);
            key.HasIndex(k => k.AccountId);
        });
        modelBuilder.Entity<AccountPassword>(password =>
        {
            password.ToTable(AccountPasswordTable);
            password.HasKey(p => p.AccountId);
            password.Property(p => p.AccountId).HasMaxLength(40);
            password.Property(p => p.Hash).HasMaxLength(200);
        });
        modelBuilder.Entity<AccountTotp>(totp =>
        {
            totp.ToTable(AccountTotpTable);
            totp.HasKey(t => t.AccountId);
            totp.Property(t => t.AccountId).HasMaxLength(40);
            totp.Property(t => t.Secret).HasMaxLength(64);
        });
        modelBuilder.Entity<PasswordReset>(reset =>
        {
            reset.ToTable(PasswordResetTable);
            reset.HasKey(r => r.TokenHash);
            reset.Property(r => r.TokenHash).HasMaxLength(64);
            reset.Property(r => r.AccountId).HasMaxLength(40);
            reset.Property(r => r.IssuedBy).HasMaxLength(40);
        });
        modelBuilder.Entity<AuditEntry>(entry =>
        {
            entry.ToTable("audit_log");
            entry.HasKey(e => e.Id);
            entry.Property(e => e.ActorId).HasMaxLength(40);
            entry.Property(e => e.Action).HasMaxLength(60);
            entry.Property(e => e.Target).HasMaxLength(200);
            entry.HasIndex(e => e.At);
        });
    }

    private sealed class UtcConverter() : ValueConverter<DateTime, DateTime>(
        value => value.Kind == DateTimeKind.Local ? value.ToUniversalTime() : value,
        value => DateTime.SpecifyKind(value, DateTimeKind.Utc));
}
