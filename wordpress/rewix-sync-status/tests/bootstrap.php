<?php
/**
 * Stubs of the few WordPress and WooCommerce functions the plugin calls.
 *
 * They record what the plugin registers (hooks, meta boxes, styles, the HPOS
 * declaration) so the tests can call the callbacks the way WordPress and
 * WooCommerce would, and escape the way WordPress does (htmlspecialchars with
 * ENT_QUOTES), so a missing esc_html shows up as a raw "<script>".
 *
 * @package Rewix_Sync_Status
 */

namespace Automattic\WooCommerce\Utilities {

	/** WooCommerce's feature compatibility registry: records each declaration. */
	final class FeaturesUtil {
		/** @var array[] Each call's arguments. */
		public static $declared = array();

		public static function declare_compatibility( string $feature_id, string $plugin_file, bool $positive_compatibility = true ): bool {
			self::$declared[] = array( $feature_id, $plugin_file, $positive_compatibility );
			return true;
		}
	}
}

namespace {

	define( 'ABSPATH', __DIR__ . '/' );

	/** Everything the plugin registered, by kind; reset per test to what loading the plugin registered. */
	function rss_reset_stubs() {
		$GLOBALS['rss_hooks']       = $GLOBALS['rss_hooks_at_load'] ?? array();
		$GLOBALS['rss_meta_boxes']  = array();
		$GLOBALS['rss_styles']      = array();
		$GLOBALS['rss_orders']      = array();
		$GLOBALS['rss_screen']      = null;
		$GLOBALS['rss_hpos_active'] = true;
		\Automattic\WooCommerce\Utilities\FeaturesUtil::$declared = array();
	}
	rss_reset_stubs();

	function add_action( $hook, $callback, $priority = 10, $accepted_args = 1 ) {
		$GLOBALS['rss_hooks'][ $hook ][] = array( $callback, $accepted_args );
		return true;
	}

	function add_filter( $hook, $callback, $priority = 10, $accepted_args = 1 ) {
		return add_action( $hook, $callback, $priority, $accepted_args );
	}

	/** Runs a filter's callbacks as WordPress would, passing only as many arguments as each accepts. */
	function apply_filters( $hook, $value, ...$args ) {
		foreach ( $GLOBALS['rss_hooks'][ $hook ] ?? array() as list( $callback, $accepted ) ) {
			$value = $callback( ...array_slice( array_merge( array( $value ), $args ), 0, $accepted ) );
		}
		return $value;
	}

	/** Runs an action's callbacks and returns what they echoed. */
	function rss_do_action( $hook, ...$args ) {
		ob_start();
		foreach ( $GLOBALS['rss_hooks'][ $hook ] ?? array() as list( $callback, $accepted ) ) {
			$callback( ...array_slice( $args, 0, $accepted ) );
		}
		return ob_get_clean();
	}

	function __( $text, $domain = 'default' ) {
		$GLOBALS['rss_text_domains'][ $domain ] = true;
		return $text;
	}

	function esc_html( $text ) {
		return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' );
	}

	function esc_attr( $text ) {
		return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' );
	}

	function esc_html__( $text, $domain = 'default' ) {
		return esc_html( __( $text, $domain ) );
	}

	function esc_attr__( $text, $domain = 'default' ) {
		return esc_attr( __( $text, $domain ) );
	}

	function plugins_url( $path = '', $plugin = '' ) {
		return 'https://shop.example/wp-content/plugins/rewix-sync-status/' . $path;
	}

	function add_meta_box( $id, $title, $callback, $screen = null, $context = 'advanced', $priority = 'default' ) {
		$GLOBALS['rss_meta_boxes'][] = compact( 'id', 'title', 'callback', 'screen', 'context', 'priority' );
	}

	function get_current_screen() {
		return $GLOBALS['rss_screen'];
	}

	function wp_enqueue_style( $handle, $src = '', $deps = array(), $ver = false, $media = 'all' ) {
		$GLOBALS['rss_styles'][ $handle ] = $src;
	}

	/** As WooCommerce 9.x: the HPOS page's screen id while HPOS is on, else the post type. */
	function wc_get_page_screen_id( $for ) {
		$for = str_replace( '-', '_', $for );
		if ( 'shop_order' !== $for ) {
			return '';
		}
		return $GLOBALS['rss_hpos_active'] ? 'woocommerce_page_wc-orders' : 'shop_order';
	}

	function wc_get_order( $id ) {
		return $GLOBALS['rss_orders'][ $id ] ?? false;
	}

	/** An order whose meta is whatever the test gives it. */
	class WC_Order {
		private $id;
		private $meta;

		public function __construct( $id, array $meta = array() ) {
			$this->id   = $id;
			$this->meta = $meta;
		}

		public function get_id() {
			return $this->id;
		}

		/** As WC_Data::get_meta with $single = true: '' when the key is absent. */
		public function get_meta( $key = '', $single = true, $context = 'view' ) {
			return $this->meta[ $key ] ?? '';
		}
	}

	/** The post WordPress passes to a legacy edit page's meta boxes. */
	class WP_Post {
		public $ID;
		public $post_type = 'shop_order';

		public function __construct( $id ) {
			$this->ID = $id;
		}
	}

	require dirname( __DIR__ ) . '/rewix-sync-status.php';
	$GLOBALS['rss_hooks_at_load'] = $GLOBALS['rss_hooks'];
}
