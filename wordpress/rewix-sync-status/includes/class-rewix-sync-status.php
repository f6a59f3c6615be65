<?php
/**
 * The "Supplier sync" column of the orders list and the box on an order's page.
 *
 * rewix-sync writes two meta keys on every shop order with supplier lines
 * through the REST API: rewix_sync_status ("KEYWORD" or "KEYWORD: detail")
 * and rewix_supplier_order (the supplier's order id once sent). This class
 * only reads and shows them; it stores nothing and calls nothing.
 *
 * @package Rewix_Sync_Status
 */

defined( 'ABSPATH' ) || exit;

/**
 * Shows an order's supplier sync state in both order storages.
 *
 * WooCommerce has two orders lists: the HPOS page (admin.php?page=wc-orders,
 * screen woocommerce_page_wc-orders), whose column callback gets the
 * WC_Order, and the legacy posts list (edit.php?post_type=shop_order, screen
 * edit-shop_order), whose callback gets the post id. Both read the meta
 * through WC_Order::get_meta(), which works whichever storage holds it.
 */
final class Rewix_Sync_Status {

	const STATUS_META         = 'rewix_sync_status';
	const SUPPLIER_ORDER_META = 'rewix_supplier_order';
	const COLUMN              = 'rewix_sync_status';
	const META_BOX            = 'rewix-sync-status';

	/** Where WooCommerce puts its own status column; ours goes right after it. */
	const AFTER_COLUMN = 'order_status';

	/** The orders list and edit screens of both storages, where the stylesheet is needed. */
	const SCREENS = array( 'woocommerce_page_wc-orders', 'edit-shop_order', 'shop_order' );

	/**
	 * URL of assets/admin.css.
	 *
	 * @var string
	 */
	private $stylesheet_url;

	/**
	 * Plugin version, appended to the stylesheet URL so browsers fetch a new one after an update.
	 *
	 * @var string
	 */
	private $version;

	/**
	 * Keeps where the stylesheet is; registers nothing yet.
	 *
	 * @param string $stylesheet_url URL of assets/admin.css.
	 * @param string $version        Plugin version.
	 */
	public function __construct( $stylesheet_url, $version ) {
		$this->stylesheet_url = $stylesheet_url;
		$this->version        = $version;
	}

	/**
	 * Hooks into both orders lists, the order edit page and the admin styles.
	 *
	 * Hook names and callback arguments are WooCommerce 9.x's: the HPOS list
	 * table fires "manage_{screen id}_custom_column" with ( $column, $order ),
	 * WordPress's posts list fires "manage_shop_order_posts_custom_column"
	 * with ( $column, $post_id ). The legacy columns are filtered through
	 * "manage_edit-shop_order_columns", which runs after WooCommerce replaced
	 * the post columns with its own in "manage_shop_order_posts_columns".
	 */
	public function register() {
		add_filter( 'manage_woocommerce_page_wc-orders_columns', array( $this, 'add_column' ) );
		add_action( 'manage_woocommerce_page_wc-orders_custom_column', array( $this, 'render_hpos_column' ), 10, 2 );
		add_filter( 'manage_edit-shop_order_columns', array( $this, 'add_column' ) );
		add_action( 'manage_shop_order_posts_custom_column', array( $this, 'render_legacy_column' ), 10, 2 );
		add_action( 'add_meta_boxes', array( $this, 'add_meta_box' ), 10, 1 );
		add_action( 'admin_enqueue_scripts', array( $this, 'enqueue_styles' ) );
	}

	/**
	 * The known keywords: label, colour class and what each means to the shop owner.
	 *
	 * A method, not a constant, because the texts are translated at run time.
	 *
	 * @return array<string, array{label: string, meaning: string}>
	 */
	public static function keywords() {
		return array(
			'pending'  => array(
				'label'   => __( 'Pending', 'rewix-sync-status' ),
				'meaning' => __( 'Recorded, not yet reserved at the supplier.', 'rewix-sync-status' ),
			),
			'reserved' => array(
				'label'   => __( 'Reserved', 'rewix-sync-status' ),
				'meaning' => __( 'Every supplier line is locked at the supplier.', 'rewix-sync-status' ),
			),
			'short'    => array(
				'label'   => __( 'Short', 'rewix-sync-status' ),
				'meaning' => __( 'The supplier could not reserve all units.', 'rewix-sync-status' ),
			),
			'held'     => array(
				'label'   => __( 'Held', 'rewix-sync-status' ),
				'meaning' => __( 'Paid, but held back from the supplier (for example paid before go-live).', 'rewix-sync-status' ),
			),
			'waiting'  => array(
				'label'   => __( 'Waiting', 'rewix-sync-status' ),
				'meaning' => __( 'Waiting for a product to be mapped to the supplier\'s catalogue.', 'rewix-sync-status' ),
			),
			'sent'     => array(
				'label'   => __( 'Sent', 'rewix-sync-status' ),
				'meaning' => __( 'Sent to the supplier as a dropshipping order; the supplier\'s status follows.', 'rewix-sync-status' ),
			),
			'released' => array(
				'label'   => __( 'Released', 'rewix-sync-status' ),
				'meaning' => __( 'Nothing is held at the supplier for this order any more.', 'rewix-sync-status' ),
			),
			'problem'  => array(
				'label'   => __( 'Problem', 'rewix-sync-status' ),
				'meaning' => __( 'Something a person must look at.', 'rewix-sync-status' ),
			),
		);
	}

	/**
	 * Splits a stored status into its keyword and detail.
	 *
	 * The keyword is the first word before any colon, lower-cased; the detail
	 * is the rest, which may be any text. Meta that is not text (an array a
	 * third party wrote) counts as absent rather than breaking the page.
	 *
	 * @param mixed $raw The rewix_sync_status meta value.
	 * @return array{keyword: string, detail: string, text: string}|null Null when there is no status.
	 */
	public static function parse( $raw ) {
		if ( ! is_scalar( $raw ) ) {
			return null;
		}
		$text = trim( (string) $raw );
		if ( '' === $text ) {
			return null;
		}
		preg_match( '/^([^\s:]*)\s*:?\s*(.*)$/s', $text, $parts );
		return array(
			'keyword' => strtolower( $parts[1] ),
			'detail'  => trim( $parts[2] ),
			'text'    => $text,
		);
	}

	/**
	 * Adds "Supplier sync" right after WooCommerce's status column.
	 *
	 * If another plugin removed the status column, it goes last instead.
	 *
	 * @param array $columns Column id => header.
	 * @return array
	 */
	public function add_column( $columns ) {
		$header = esc_html__( 'Supplier sync', 'rewix-sync-status' );
		if ( ! array_key_exists( self::AFTER_COLUMN, $columns ) ) {
			$columns[ self::COLUMN ] = $header;
			return $columns;
		}
		$with_ours = array();
		foreach ( $columns as $id => $title ) {
			$with_ours[ $id ] = $title;
			if ( self::AFTER_COLUMN === $id ) {
				$with_ours[ self::COLUMN ] = $header;
			}
		}
		return $with_ours;
	}

	/**
	 * Our cell in the HPOS orders list, which passes the order itself.
	 *
	 * @param string   $column Column id being rendered.
	 * @param WC_Order $order  The row's order.
	 */
	public function render_hpos_column( $column, $order ) {
		if ( self::COLUMN !== $column ) {
			return;
		}
		echo $this->cell_html( $order ); // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- built from escaped parts.
	}

	/**
	 * Our cell in the legacy posts list, which passes the post id.
	 *
	 * @param string $column  Column id being rendered.
	 * @param int    $post_id The row's order id.
	 */
	public function render_legacy_column( $column, $post_id ) {
		if ( self::COLUMN !== $column ) {
			return;
		}
		echo $this->cell_html( $this->order( $post_id ) ); // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- built from escaped parts.
	}

	/**
	 * The cell: the status badge and the supplier's order id, or a dash.
	 *
	 * @param WC_Order|null $order The order, or null if it could not be read.
	 * @return string HTML, every outside value escaped.
	 */
	public function cell_html( $order ) {
		$status         = $order ? self::parse( $order->get_meta( self::STATUS_META ) ) : null;
		$supplier_order = $order ? $this->supplier_order( $order ) : '';

		$html = $status ? $this->badge_html( $status ) : $this->dash_html();
		if ( '' !== $supplier_order ) {
			$html .= '<small class="rewix-sync-supplier-order">'
				/* translators: %s: the supplier's order id. */
				. esc_html( sprintf( __( 'Supplier order %s', 'rewix-sync-status' ), $supplier_order ) )
				. '</small>';
		}
		return $html;
	}

	/**
	 * Registers the box on the order edit page of whichever storage is in use.
	 *
	 * WordPress fires add_meta_boxes with the post type ("shop_order") on the
	 * legacy edit page; WooCommerce fires it with its HPOS screen id
	 * (wc_get_page_screen_id( 'shop-order' ), "woocommerce_page_wc-orders").
	 * Other post types' edit pages fire it too: those are left alone.
	 *
	 * @param string $screen_id Post type or screen id the boxes are for.
	 */
	public function add_meta_box( $screen_id ) {
		if ( ! in_array( $screen_id, $this->order_edit_screens(), true ) ) {
			return;
		}
		add_meta_box(
			self::META_BOX,
			__( 'Supplier sync', 'rewix-sync-status' ),
			array( $this, 'render_meta_box' ),
			$screen_id,
			'side',
			'default'
		);
	}

	/**
	 * Echoes the box; WooCommerce passes the WC_Order (HPOS), WordPress the WP_Post (legacy).
	 *
	 * @param WC_Order|WP_Post $post_or_order The order being edited.
	 */
	public function render_meta_box( $post_or_order ) {
		$order = $post_or_order instanceof WC_Order ? $post_or_order : $this->order( $post_or_order->ID ?? 0 );
		echo $this->box_html( $order ); // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- built from escaped parts.
	}

	/**
	 * The box: the badge, what it means, and the supplier's order id.
	 *
	 * @param WC_Order|null $order The order, or null if it could not be read.
	 * @return string HTML, every outside value escaped.
	 */
	public function box_html( $order ) {
		$status         = $order ? self::parse( $order->get_meta( self::STATUS_META ) ) : null;
		$supplier_order = $order ? $this->supplier_order( $order ) : '';

		$html = '<div class="rewix-sync-box">';
		if ( $status ) {
			$html .= '<p>' . $this->badge_html( $status ) . '</p>';
			$html .= '<p class="rewix-sync-meaning">' . esc_html( $this->meaning( $status['keyword'] ) ) . '</p>';
		} else {
			$html .= '<p>' . $this->dash_html() . '</p>';
			$html .= '<p class="rewix-sync-meaning">' . esc_html__( 'No supplier sync status: the order has no supplier products, or the system has not seen it yet.', 'rewix-sync-status' ) . '</p>';
		}
		if ( '' !== $supplier_order ) {
			$html .= '<p class="rewix-sync-supplier-order">'
				/* translators: %s: the supplier's order id. */
				. esc_html( sprintf( __( 'Supplier order %s', 'rewix-sync-status' ), $supplier_order ) )
				. '</p>';
		} elseif ( $status ) {
			$html .= '<p class="rewix-sync-supplier-order">' . esc_html__( 'Not sent to the supplier yet.', 'rewix-sync-status' ) . '</p>';
		}
		return $html . '</div>';
	}

	/**
	 * Loads the badge colours on the orders screens only.
	 */
	public function enqueue_styles() {
		$screen = function_exists( 'get_current_screen' ) ? get_current_screen() : null;
		if ( ! $screen || ! in_array( $screen->id, self::SCREENS, true ) ) {
			return;
		}
		wp_enqueue_style( self::META_BOX, $this->stylesheet_url, array(), $this->version );
	}

	/**
	 * The badge: a known keyword gets its label and colour, anything else is shown as written, in grey.
	 *
	 * @param array $status What parse() returned.
	 * @return string HTML.
	 */
	private function badge_html( array $status ) {
		$known = self::keywords();
		if ( isset( $known[ $status['keyword'] ] ) ) {
			$class = 'rewix-sync-' . $status['keyword'];
			$label = $known[ $status['keyword'] ]['label'];
			$text  = '' === $status['detail'] ? $label : $label . ': ' . $status['detail'];
		} else {
			$class = 'rewix-sync-unknown';
			$text  = $status['text'];
		}
		// The tooltip says what the state means and repeats the whole text,
		// which the list cuts short when the detail is long.
		$title = $this->meaning( $status['keyword'] ) . "\n" . $text;
		return '<mark class="rewix-sync-status ' . esc_attr( $class ) . '" title="' . esc_attr( $title ) . '"><span>'
			. esc_html( $text ) . '</span></mark>';
	}

	/**
	 * The em dash of an order without a status, as WooCommerce shows empty cells.
	 *
	 * @return string HTML.
	 */
	private function dash_html() {
		return '<span class="rewix-sync-none" title="' . esc_attr__( 'No supplier sync status', 'rewix-sync-status' ) . '">&mdash;</span>';
	}

	/**
	 * What a keyword means, for the title and the box.
	 *
	 * @param string $keyword Lower-case keyword.
	 * @return string
	 */
	private function meaning( $keyword ) {
		$known = self::keywords();
		return isset( $known[ $keyword ] )
			? $known[ $keyword ]['meaning']
			: __( 'A status this version of the plugin does not know.', 'rewix-sync-status' );
	}

	/**
	 * The supplier's order id, or '' while there is none.
	 *
	 * @param WC_Order $order The order.
	 * @return string
	 */
	private function supplier_order( $order ) {
		$value = $order->get_meta( self::SUPPLIER_ORDER_META );
		return is_scalar( $value ) ? trim( (string) $value ) : '';
	}

	/**
	 * The order with that id, or null (deleted meanwhile, or WooCommerce not loaded).
	 *
	 * @param int $order_id Order (post) id.
	 * @return WC_Order|null
	 */
	private function order( $order_id ) {
		if ( ! function_exists( 'wc_get_order' ) ) {
			return null;
		}
		$order = wc_get_order( $order_id );
		return $order instanceof WC_Order ? $order : null;
	}

	/**
	 * The edit screens of an order: the legacy post type, and HPOS's page when it is on.
	 *
	 * @return string[]
	 */
	private function order_edit_screens() {
		$screens = array( 'shop_order' );
		if ( function_exists( 'wc_get_page_screen_id' ) ) {
			$screens[] = wc_get_page_screen_id( 'shop-order' );
		}
		return array_values( array_unique( array_filter( $screens ) ) );
	}
}
